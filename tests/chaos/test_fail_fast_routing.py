"""The downloader's fail-fast routing with in-memory collaborators: which failures go to the DLQ on their first
receive, what the last-receive claim says up front, and what happens when the DLQ refuses the message.
(The end-to-end scenarios, one per permanent-error kind, are in `test_crash_safety`.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.providers.errors import AuthError, ProviderResponseError, ProviderUnavailable
from pipeline.services.downloader import Disposition, fails_fast
from pipeline.sqs_delivery import SqsDelivery
from pipeline.transfer.errors import ChecksumMismatch, SizeMismatch, SourceError
from pipeline.transfer.url_policy import UnsafeDownloadUrl
from tests.chaos import fakes

GOOD = {
    "schema_version": 1,
    "run_id": "20260101T020000Z-abcd1234",
    "correlation_id": "corr-1",
    "provider": "gopro",
    "media_id": "GX0100017abc",
    "filename": "GX010001.MP4",
    "size": 123,
    "captured_at": "2024-07-14T09:30:00Z",
    "enqueued_at": "2026-01-01T02:00:03.000Z",
    "media_type": "video",
}


def delivery(receive: int = 1) -> SqsDelivery:
    return SqsDelivery.from_record(
        {
            "messageId": "m-1",
            "receiptHandle": "rh-1",
            "body": json.dumps(GOOD),
            "attributes": {"ApproximateReceiveCount": str(receive)},
            "messageAttributes": {},
        }
    )


class Failing(fakes.FakeTransfer):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "fast"),
    [
        (UnsafeDownloadUrl("https://10.0.0.1/x", "an internal address"), True),
        (SizeMismatch("5 TiB and more do not fit"), True),
        (ProviderResponseError("download descriptor: the answer is not JSON"), True),
        (SizeMismatch("cut short", transient=True), False),
        (ProviderUnavailable("503"), False),
        (SourceError("403 (pre-signed URL expired)", status=403), False),
        (SourceError("404 (the link vanished: deleted mid-transfer?)", status=404), False),
        (SourceError("410 (gone)", status=410), False),
        (SourceError("400 (the content host refuses the request)", status=400), True),
        (ChecksumMismatch("part 3 read again differs"), False),
        (AuthError("sign in again", reauth_required=True), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_which_failures_fail_fast(exc: Exception, fast: bool) -> None:
    assert fails_fast(exc) is fast


def test_a_permanent_failure_is_failed_dead_lettered_with_its_reason_and_acknowledged() -> None:
    world = fakes.downloader(transfer=Failing(UnsafeDownloadUrl("https://10.0.0.1/x", "an internal address")))
    outcome = world.downloader.process(delivery(receive=1))
    assert outcome.disposition is Disposition.DEAD_LETTERED
    assert outcome.disposition.acknowledged
    assert "internal address" in world.state.failed[GOOD["media_id"]]
    [dead] = [m for m in world.sqs.sent if m["QueueUrl"] == "dlq"]
    assert "internal address" in dead["MessageAttributes"]["poison_reason"]["StringValue"]
    assert dead["MessageAttributes"]["receive_count"]["StringValue"] == "1"


def test_a_transient_failure_keeps_its_receives() -> None:
    world = fakes.downloader(transfer=Failing(ProviderUnavailable("503")))
    assert world.downloader.process(delivery(receive=1)).disposition is Disposition.RETRY
    assert world.sqs.sent == []


def test_when_the_dlq_refuses_the_record_is_failed_and_sqs_retries_it() -> None:
    world = fakes.downloader(transfer=Failing(SizeMismatch("too big")))

    def refuse(**kwargs: Any) -> Any:
        raise RuntimeError("SQS unavailable")

    world.sqs.send_message = refuse  # type: ignore[method-assign]
    outcome = world.downloader.process(delivery(receive=1))
    assert outcome.disposition is Disposition.RETRY
    assert GOOD["media_id"] in world.state.failed  # the record already says why


def test_the_last_receive_claims_with_the_reason_a_dead_worker_leaves() -> None:
    world = fakes.downloader()
    seen: list[Any] = []
    claim = world.state.claim

    def recording(provider: str, media_id: str, **kwargs: Any) -> Any:
        seen.append(kwargs.get("final_error"))
        return claim(provider, media_id, **kwargs)

    world.state.claim = recording  # type: ignore[method-assign]
    world.downloader.process(delivery(receive=2))
    world.downloader.process(delivery(receive=3))
    assert seen[0] is None
    assert "last receive (3 of 3)" in seen[1]
