"""`Downloader` against the in-memory state store: claim, transfer, record, and what each failure does."""

from __future__ import annotations

from typing import Any

from pipeline import resources
from pipeline.deadline import Deadline
from pipeline.messages import DownloadMessage
from pipeline.observability.metrics import Metric
from pipeline.providers.errors import ProviderUnavailable
from pipeline.queueing import POISON_REASON_ATTRIBUTE
from pipeline.services.download_outcome import Disposition
from pipeline.services.downloader import CONTINUATION_ATTRIBUTE, MAX_CONTINUATIONS
from pipeline.state import MediaStatus
from pipeline.transfer.errors import DeadlineReached
from tests.unit.services.fakes import DLQ_URL, QUEUE_URL, Monotonic, Rig, delivery, video

RUN_ID = "20260301T020000Z-abcdef01"


def prepared(*, with_run: bool = True) -> Rig:
    rig = Rig()
    rig.provider.add(video(1))
    if with_run:
        rig.state.runs.create(RUN_ID, correlation_id="c-1", started_at=rig.clock(), provider="gopro")
    return rig


def message(media_id: str = "vid000001") -> dict[str, Any]:
    body = DownloadMessage.create(
        run_id=RUN_ID,
        correlation_id="c-1",
        provider="gopro",
        media_id=media_id,
        filename="GX010001.MP4",
        size=1001,
        captured_at="2026-03-01T01:00:00Z",
    )
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "rh-1",
        "Body": body.to_json(),
        "MessageAttributes": body.message_attributes(),
    }


def status(rig: Rig, media_id: str = "vid000001") -> MediaStatus | None:
    record = rig.state.media.get("gopro", media_id)
    return record.status if record else None


def test_a_delivery_is_claimed_transferred_and_completed() -> None:
    rig = prepared()
    outcome = rig.downloader().process(delivery(message()))

    assert outcome.disposition is Disposition.SYNCED
    assert outcome.disposition.acknowledged
    [call] = rig.transfer.calls
    assert call["key"] == "gopro/2026/03/01/vid000001/GX010001.MP4"
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is MediaStatus.COMPLETED
    assert record.s3_key == call["key"]
    assert record.lease_owner is None
    assert record.attempts == 1
    run = rig.state.runs.get(RUN_ID)
    assert run is not None
    assert run.synced == 1
    assert rig.metrics.total(Metric.VIDEOS_SYNCED) == 1
    assert rig.sqs.visibility == []


def test_a_listing_feeds_the_downloader() -> None:
    """The two services agree on the message: what the listing queues, the downloader archives."""
    from pipeline.services.listing_models import ListingRequest

    rig = Rig()
    rig.provider.add(video(1), video(2))
    listed = rig.listing().run(ListingRequest(), now=rig.clock())
    downloader = rig.downloader()
    outcomes = [downloader.process(delivery(queued)) for queued in rig.sqs.queued()]

    assert [o.disposition for o in outcomes] == [Disposition.SYNCED, Disposition.SYNCED]
    run = rig.state.runs.get(listed.run_id)
    assert run is not None
    assert (run.enqueued, run.synced) == (2, 2)


def test_a_redelivery_of_a_completed_medium_is_acknowledged_without_a_transfer() -> None:
    rig = prepared()
    downloader = rig.downloader()
    assert downloader.process(delivery(message())).disposition is Disposition.SYNCED

    again = downloader.process(delivery(message(), message_id="m-2", receive_count=2))

    assert again.disposition is Disposition.ALREADY_DONE
    assert again.disposition.acknowledged
    assert len(rig.transfer.calls) == 1
    assert rig.provider.resolved == ["vid000001"]  # no fresh URLs either
    run = rig.state.runs.get(RUN_ID)
    assert run is not None
    assert run.synced == 1  # counted once


def test_a_transient_failure_releases_the_record_and_asks_sqs_for_a_retry() -> None:
    rig = prepared()
    rig.transfer.failures.append(ProviderUnavailable("503 from the CDN"))

    outcome = rig.downloader().process(delivery(message(), receive_count=1))

    assert outcome.disposition is Disposition.RETRY
    assert not outcome.disposition.acknowledged  # reported in batchItemFailures
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is MediaStatus.PENDING
    assert record.lease_owner is None  # the redelivery may claim it at once
    assert record.last_error is not None
    assert "503 from the CDN" in record.last_error
    assert rig.sqs.visibility == [
        {
            "QueueUrl": QUEUE_URL,
            "ReceiptHandle": "rh-1",
            "VisibilityTimeout": resources.RETRY_VISIBILITY_SECONDS[0],
        }
    ]
    run = rig.state.runs.get(RUN_ID)
    assert run is not None
    assert (run.retried, run.failed) == (1, 0)

    retried = rig.downloader().process(delivery(message(), message_id="m-1", receive_count=2))
    assert retried.disposition is Disposition.SYNCED


def test_a_failure_on_the_last_receive_records_failed() -> None:
    rig = prepared()
    rig.transfer.failures.append(ProviderUnavailable("503 from the CDN"))

    outcome = rig.downloader().process(delivery(message(), receive_count=resources.MAX_RECEIVE_COUNT))

    assert outcome.disposition is Disposition.FAILED
    assert not outcome.disposition.acknowledged  # SQS moves it to the DLQ
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is MediaStatus.FAILED
    assert record.last_error is not None
    assert "503 from the CDN" in record.last_error
    assert rig.sqs.visibility == []  # no retry to hurry
    run = rig.state.runs.get(RUN_ID)
    assert run is not None
    assert (run.failed, run.retried) == (1, 0)
    assert rig.metrics.total(Metric.VIDEOS_FAILED) == 1


def test_a_poison_message_goes_to_the_dlq_at_once() -> None:
    rig = prepared()
    poison = {"MessageId": "m-9", "ReceiptHandle": "rh-9", "Body": '{"schema_version": 1, "media_id": '}

    outcome = rig.downloader().process(delivery(poison, receive_count=1))

    assert outcome.disposition is Disposition.POISON
    assert outcome.disposition.acknowledged  # not received twice more
    [dead] = rig.sqs.to(DLQ_URL)
    assert dead["MessageBody"] == poison["Body"]
    assert dead["MessageAttributes"][POISON_REASON_ATTRIBUTE]["StringValue"].startswith("not_json")
    assert rig.transfer.calls == []
    assert rig.state.media.get("gopro", "vid000001") is None  # nothing claimed
    assert rig.metrics.total(Metric.POISON_MESSAGES) == 1


def test_a_message_with_an_id_outside_the_providers_alphabet_is_poison() -> None:
    rig = prepared()
    outcome = rig.downloader().process(delivery(message(media_id="short")))

    assert outcome.disposition is Disposition.POISON
    assert len(rig.sqs.to(DLQ_URL)) == 1
    assert rig.provider.resolved == []


def test_a_lease_held_by_another_worker_is_not_taken() -> None:
    rig = prepared()
    held = rig.state.media.claim("gopro", "vid000001", owner="other-worker", run_id=RUN_ID, lease_seconds=600)
    assert held

    outcome = rig.downloader().process(delivery(message()))

    assert outcome.disposition is Disposition.LEASED_ELSEWHERE
    assert rig.transfer.calls == []
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is MediaStatus.IN_PROGRESS
    assert record.lease_owner == "other-worker"

    rig.clock.advance(seconds=601)  # the other worker died: its lease expires and the medium can be taken
    taken = rig.downloader().process(delivery(message(), message_id="m-2", receive_count=2))
    assert taken.disposition is Disposition.SYNCED


def test_the_deadline_path_checkpoints_and_continues() -> None:
    rig = prepared()
    downloader = rig.downloader()
    # 30 s left: less than the safety margin the downloader keeps back, so the transfer stops at once.
    outcome = downloader.process(delivery(message()), deadline=Deadline.in_seconds(30, clock=Monotonic()))

    assert outcome.disposition is Disposition.CONTINUED
    assert outcome.disposition.acknowledged  # no receive spent on the deadline
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is MediaStatus.PENDING
    assert record.checkpoint is not None
    assert record.checkpoint["key"] == "gopro/2026/03/01/vid000001/GX010001.MP4"
    [continuation] = rig.sqs.to(QUEUE_URL)
    assert continuation["MessageAttributes"][CONTINUATION_ATTRIBUTE]["StringValue"] == "1"
    assert rig.sqs.visibility == []

    fresh = {**continuation, "MessageId": "m-2", "ReceiptHandle": "rh-2"}
    finished = downloader.process(delivery(fresh))

    assert finished.disposition is Disposition.SYNCED
    resumed = rig.transfer.resumes[-1]
    assert resumed is not None
    assert resumed.upload_id == "upload-1"  # it continued the kept upload
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is MediaStatus.COMPLETED
    assert record.checkpoint is None
    run = rig.state.runs.get(RUN_ID)
    assert run is not None
    assert (run.synced, run.retried, run.failed) == (1, 0, 0)


def test_a_medium_deleted_at_the_source_is_completed_with_a_note_once_the_deletion_is_confirmed() -> None:
    rig = prepared()
    del rig.provider.library["vid000001"]

    first = rig.downloader().process(delivery(message()))  # one 404 is not proof

    assert first.disposition is Disposition.RETRY
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is not MediaStatus.COMPLETED
    assert record.note == "not_found"

    second = rig.downloader().process(delivery(message(), receive_count=2))  # a second 404, and not listed

    assert second.disposition is Disposition.SOURCE_DELETED
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is MediaStatus.COMPLETED
    assert record.note == "source_deleted"
    assert rig.transfer.calls == []


def test_a_transfer_still_unfinished_after_every_continuation_is_failed() -> None:
    rig = prepared()
    stuck = message()
    stuck["MessageAttributes"] = {
        **stuck["MessageAttributes"],
        CONTINUATION_ATTRIBUTE: {"DataType": "Number", "StringValue": str(MAX_CONTINUATIONS)},
    }

    outcome = rig.downloader().process(delivery(stuck), deadline=Deadline.in_seconds(30, clock=Monotonic()))

    assert outcome.disposition is Disposition.FAILED  # on its first receive: it is stuck, not progressing
    assert status(rig) is MediaStatus.FAILED
    assert rig.sqs.to(QUEUE_URL) == []  # no 25th continuation


def test_too_little_time_to_start_is_an_ordinary_retry() -> None:
    rig = prepared()
    rig.transfer.failures.append(DeadlineReached(None))

    outcome = rig.downloader().process(delivery(message()))

    assert outcome.disposition is Disposition.RETRY
    assert status(rig) is MediaStatus.PENDING
    assert rig.sqs.to(QUEUE_URL) == []
    assert len(rig.sqs.visibility) == 1
