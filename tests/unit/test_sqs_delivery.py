"""The typed view of an SQS delivery reads both record shapes and never raises on a malformed field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.messages import CORRELATION_ID_ATTRIBUTE
from pipeline.sqs_delivery import SqsDelivery, attribute_value


def test_a_lambda_event_record() -> None:
    delivery = SqsDelivery.from_record(
        {
            "messageId": "m-1",
            "receiptHandle": "rh-1",
            "body": "{}",
            "attributes": {"ApproximateReceiveCount": "2", "ApproximateFirstReceiveTimestamp": "1767225600000"},
            "messageAttributes": {
                CORRELATION_ID_ATTRIBUTE: {"stringValue": "corr-1", "dataType": "String"},
                "continuations": {"stringValue": "3", "dataType": "Number"},
            },
        }
    )
    assert (delivery.message_id, delivery.receipt_handle, delivery.body) == ("m-1", "rh-1", "{}")
    assert delivery.receive_count == 2
    assert delivery.first_received_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert delivery.correlation_id == "corr-1"
    assert delivery.int_attribute("continuations") == 3
    assert delivery.int_attribute("absent") == 0


def test_a_receive_message_answer() -> None:
    delivery = SqsDelivery.from_record(
        {
            "MessageId": "m-2",
            "ReceiptHandle": "rh-2",
            "Body": "x",
            "Attributes": {"ApproximateReceiveCount": "1"},
            "MessageAttributes": {CORRELATION_ID_ATTRIBUTE: {"StringValue": "corr-2", "DataType": "String"}},
        }
    )
    assert (delivery.message_id, delivery.receipt_handle, delivery.body) == ("m-2", "rh-2", "x")
    assert delivery.correlation_id == "corr-2"


def test_malformed_fields_become_safe_defaults() -> None:
    delivery = SqsDelivery.from_record(
        {
            "receiptHandle": 7,
            "attributes": {"ApproximateReceiveCount": "many", "ApproximateFirstReceiveTimestamp": "soon"},
            "messageAttributes": ["not", "a", "map"],
        }
    )
    assert delivery.message_id == ""
    assert delivery.receipt_handle is None
    assert delivery.body is None
    assert delivery.receive_count == 1
    assert delivery.first_received_at is None
    assert delivery.message_attributes == {}
    assert delivery.int_attribute("continuations") == 0
    assert attribute_value({"a": {"StringValue": 5}}, "a") is None


def test_a_record_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(TypeError):
        SqsDelivery.from_record(["not", "a", "record"])
