"""SendMessageBatch and the DLQ send against a real moto server, failed entries injected at the botocore level."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from pipeline.messages import CORRELATION_ID_ATTRIBUTE, DownloadMessage, parse
from pipeline.queueing import (
    MAX_BATCH_BYTES,
    ORIGINAL_MESSAGE_ID_ATTRIBUTE,
    POISON_REASON_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    attributes_size,
    send_download_messages,
    send_to_dead_letter,
)
from pipeline.retry import RetryPolicy
from tests.fixtures.aws import MotoStack

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def sqs(aws: MotoStack) -> Any:
    return aws.client("sqs")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="downloads")["QueueUrl"])


def messages(count: int, **overrides: Any) -> list[DownloadMessage]:
    return [
        DownloadMessage.create(
            run_id="run-1",
            correlation_id="corr-1",
            provider="gopro",
            media_id=f"media{i:03d}",
            filename=overrides.get("filename", f"GX{i:06d}.MP4"),
            size=1000 + i,
        )
        for i in range(count)
    ]


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        batch = response.get("Messages", [])
        if not batch:
            return received
        received.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


class FailedEntries:
    """Botocore hooks on a real client: chosen media are taken out of a SendMessageBatch request before it is
    sent (so they really are not enqueued) and reported back in the response's `Failed` list, as SQS does.

    `plan[media_id]` = (how many calls to fail it for, SenderFault). Also records every call's entries.
    """

    def __init__(self, client: Any, plan: dict[str, tuple[int, bool]]) -> None:
        self.remaining = {media_id: times for media_id, (times, _) in plan.items()}
        self.sender_fault = {media_id: fault for media_id, (_, fault) in plan.items()}
        self.calls: list[list[dict[str, Any]]] = []
        self.attempts: Counter[str] = Counter()
        self._held: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.sqs.SendMessageBatch", self._before)
        client.meta.events.register("after-call.sqs.SendMessageBatch", self._after)

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(list(params["Entries"]))
        kept, self._held = [], []
        for entry in params["Entries"]:
            media_id = json.loads(entry["MessageBody"])["media_id"]
            self.attempts[media_id] += 1
            if self.remaining.get(media_id, 0) > 0:
                self.remaining[media_id] -= 1
                self._held.append({"Id": entry["Id"], "media_id": media_id})
            else:
                kept.append(entry)
        if not kept:  # SQS refuses an empty batch; send one harmless entry we then hide from the caller
            kept = [{"Id": "probe", "MessageBody": "{}"}]
        params["Entries"] = kept

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        parsed["Successful"] = [s for s in parsed.get("Successful", []) if s["Id"] != "probe"]
        failed = parsed.setdefault("Failed", [])
        for held in self._held:
            fault = self.sender_fault[held["media_id"]]
            code = "InvalidParameterValue" if fault else "InternalError"
            failed.append({"Id": held["Id"], "SenderFault": fault, "Code": code, "Message": "injected"})


def bodies(received: list[dict[str, Any]]) -> list[DownloadMessage]:
    return [parse(m["Body"]) for m in received if m["Body"] != "{}"]


def test_sends_in_batches_of_ten_with_the_correlation_attribute(sqs: Any, queue_url: str) -> None:
    recorder = FailedEntries(sqs, {})
    sent = messages(25)

    report = send_download_messages(sqs, queue_url, sent, policy=FAST, sleep=lambda _s: None)

    assert report.ok
    assert report.sent_count == 25
    assert [len(call) for call in recorder.calls] == [10, 10, 5]
    received = drain(sqs, queue_url)
    assert sorted(bodies(received), key=lambda m: m.media_id) == sent
    attributes = {m["MessageAttributes"][CORRELATION_ID_ATTRIBUTE]["StringValue"] for m in received}
    assert attributes == {"corr-1"}
    assert len({s.message_id for s in report.sent}) == 25


def test_transient_failed_entries_are_retried_until_sent(sqs: Any, queue_url: str) -> None:
    injector = FailedEntries(sqs, {"media001": (2, False), "media005": (1, False), "media012": (3, False)})
    slept: list[float] = []

    report = send_download_messages(sqs, queue_url, messages(15), policy=FAST, sleep=slept.append)

    assert report.ok, report.failed
    assert report.sent_count == 15
    assert report.retried_entries == 2 + 1 + 3
    assert injector.attempts["media012"] == 4
    assert slept  # backed off between attempts
    received = bodies(drain(sqs, queue_url))
    assert Counter(m.media_id for m in received) == Counter(f"media{i:03d}" for i in range(15))  # once each


def test_sender_fault_entries_are_reported_not_retried(sqs: Any, queue_url: str) -> None:
    injector = FailedEntries(sqs, {"media002": (99, True), "media007": (99, True)})

    report = send_download_messages(sqs, queue_url, messages(10), policy=FAST, sleep=lambda _s: None)

    assert not report.ok
    assert sorted(f.media_id for f in report.failed) == ["media002", "media007"]
    assert all(f.sender_fault and f.code == "InvalidParameterValue" for f in report.failed)
    assert injector.attempts["media002"] == 1
    assert report.sent_count == 8
    assert len(bodies(drain(sqs, queue_url))) == 8


def test_transient_failures_are_bounded_then_reported(sqs: Any, queue_url: str) -> None:
    injector = FailedEntries(sqs, {"media003": (99, False)})

    report = send_download_messages(sqs, queue_url, messages(5), policy=FAST, sleep=lambda _s: None)

    assert [(f.media_id, f.code, f.sender_fault) for f in report.failed] == [("media003", "InternalError", False)]
    assert injector.attempts["media003"] == FAST.max_attempts
    assert report.sent_count == 4


def test_batches_respect_the_total_payload_limit(sqs: Any, queue_url: str) -> None:
    recorder = FailedEntries(sqs, {})
    # Characters outside the BMP are escaped as surrogate pairs (12 bytes each): ~48 KiB a message.
    big = messages(12, filename="\U0001f3c4" * 4000 + ".mp4")

    report = send_download_messages(sqs, queue_url, big, policy=FAST, sleep=lambda _s: None)

    assert report.ok
    assert len(recorder.calls) >= 3
    for call in recorder.calls:
        total = sum(
            len(entry["MessageBody"].encode()) + attributes_size(entry.get("MessageAttributes", {}))
            for entry in call
        )
        assert total <= MAX_BATCH_BYTES
    assert len(bodies(drain(sqs, queue_url))) == 12


def test_a_failing_call_stops_and_reports_everything_unsent(sqs: Any) -> None:
    recorder = FailedEntries(sqs, {})
    no_such_queue = sqs.meta.endpoint_url + "/123456789012/no-such-queue"

    report = send_download_messages(sqs, no_such_queue, messages(25), policy=FAST, sleep=lambda _s: None)

    assert report.aborted is not None
    assert report.sent_count == 0
    assert sorted(f.media_id for f in report.failed) == [f"media{i:03d}" for i in range(25)]
    assert len(recorder.calls) == 1  # a configuration error is not repeated for every batch


def test_nothing_to_send(sqs: Any, queue_url: str) -> None:
    report = send_download_messages(sqs, queue_url, [], policy=FAST)
    assert report.ok
    assert report.calls == 0


@pytest.fixture
def dlq_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="downloads-dlq")["QueueUrl"])


def test_dead_letter_carries_the_reason(sqs: Any, dlq_url: str) -> None:
    poison = '{"schema_version": 7, "media_id": "x"}'

    message_id = send_to_dead_letter(
        sqs,
        dlq_url,
        poison,
        reason="unknown_schema_version: schema_version 7",
        original_message_id="orig-123",
        receive_count=1,
        original_attributes={CORRELATION_ID_ATTRIBUTE: {"stringValue": "corr-9", "dataType": "String"}},
    )

    (received,) = drain(sqs, dlq_url)
    assert received["MessageId"] == message_id
    assert received["Body"] == poison  # kept as it arrived, for the operator
    attributes = {name: value["StringValue"] for name, value in received["MessageAttributes"].items()}
    assert attributes == {
        POISON_REASON_ATTRIBUTE: "unknown_schema_version: schema_version 7",
        ORIGINAL_MESSAGE_ID_ATTRIBUTE: "orig-123",
        RECEIVE_COUNT_ATTRIBUTE: "1",
        CORRELATION_ID_ATTRIBUTE: "corr-9",
    }


def test_dead_letter_accepts_bodies_sqs_would_refuse(sqs: Any, dlq_url: str) -> None:
    send_to_dead_letter(sqs, dlq_url, "bad\x00body\ud800", "not_json: JSONDecodeError", "orig-1", 2)
    send_to_dead_letter(sqs, dlq_url, "", "not_json: JSONDecodeError", "orig-2", 1)

    received = drain(sqs, dlq_url)
    assert sorted(m["Body"] for m in received) == ["(empty body)", "bad\ufffdbody\ufffd"]
    assert {m["MessageAttributes"][POISON_REASON_ATTRIBUTE]["StringValue"] for m in received} == {
        "not_json: JSONDecodeError"
    }
