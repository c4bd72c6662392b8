"""One typed view of an SQS delivery, in either shape it arrives in: a Lambda event record or a ReceiveMessage.

Why one view (Powertools' `SQSRecord` habit): the message id, the receive count and the message attributes were
read from raw dictionaries in several modules, each with its own spelling (`stringValue` in a Lambda event,
`StringValue` from the SQS API) and its own fallback. Here they are read once, tolerantly: a record is hostile
input, so a missing or malformed field becomes a safe default, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.messages import CORRELATION_ID_ATTRIBUTE, MAX_ID_CHARS, TOKEN_PATTERN


def attribute_value(attributes: Mapping[str, Any] | None, name: str) -> str | None:
    """A string message attribute from either shape: the SQS API's (`StringValue`) or a Lambda SQS event's
    (`stringValue`). None when absent or malformed."""
    if not attributes:
        return None
    entry = attributes.get(name)
    if not isinstance(entry, Mapping):
        return None
    value = entry.get("StringValue", entry.get("stringValue"))
    return value if isinstance(value, str) else None


def correlation_id_from_attributes(attributes: Mapping[str, Any] | None) -> str | None:
    """The correlation id carried as a message attribute, if it is a plausible one (it goes into log lines)."""
    value = attribute_value(attributes, CORRELATION_ID_ATTRIBUTE)
    if value is None or len(value) > MAX_ID_CHARS or not TOKEN_PATTERN.fullmatch(value):
        return None
    return value


def _first(record: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in record:
            return record[name]
    return None


@dataclass(frozen=True)
class SqsDelivery:
    """One delivery of a message. `message_id` is "" when the record has none; `body` is kept as it came (a
    non-string body is poison, decided later)."""

    message_id: str
    body: Any = field(repr=False)
    receipt_handle: str | None = field(default=None, repr=False)
    receive_count: int = 1
    first_received_at: datetime | None = None
    message_attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Any) -> SqsDelivery:
        """A Lambda event record (`messageId`, `attributes`) or a ReceiveMessage message (`MessageId`,
        `Attributes`). TypeError for anything that is not a mapping (not a record at all)."""
        if not isinstance(record, Mapping):
            raise TypeError(f"an SQS record is a mapping, not {type(record).__name__}")
        system = _first(record, "attributes", "Attributes")
        system = system if isinstance(system, Mapping) else {}
        attributes = _first(record, "messageAttributes", "MessageAttributes")
        receipt = _first(record, "receiptHandle", "ReceiptHandle")
        message_id = _first(record, "messageId", "MessageId")
        return cls(
            message_id="" if message_id is None else str(message_id),
            body=_first(record, "body", "Body"),
            receipt_handle=receipt if isinstance(receipt, str) else None,
            receive_count=_receive_count(system.get("ApproximateReceiveCount")),
            first_received_at=_epoch_ms(system.get("ApproximateFirstReceiveTimestamp")),
            message_attributes=attributes if isinstance(attributes, Mapping) else {},
        )

    @property
    def correlation_id(self) -> str | None:
        return correlation_id_from_attributes(self.message_attributes)

    def attribute(self, name: str) -> str | None:
        return attribute_value(self.message_attributes, name)

    def int_attribute(self, name: str) -> int:
        """A whole-number attribute (a counter); 0 when absent or not a plain non-negative integer."""
        value = self.attribute(name)
        return int(value) if value is not None and value.isdigit() else 0


def _receive_count(raw: Any) -> int:
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        return 1


def _epoch_ms(raw: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
