"""`ListingService` against the in-memory state store: what a night enqueues, records, hands over and reports."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline import resources
from pipeline.deadline import Deadline
from pipeline.observability.metrics import Metric
from pipeline.providers.base import MediaType
from pipeline.providers.errors import AuthError, ProviderUnavailable
from pipeline.services.listing_models import ListingCursor, ListingMode, ListingRequest
from pipeline.state import Checksum, MediaStatus
from tests.unit.services.fakes import FUNCTION_ARN, Monotonic, Rig, delivery, settings, video


def archive(rig: Rig, *ids: str) -> None:
    """Record media as COMPLETED, as a downloader would have."""
    for media_id in ids:
        assert rig.state.media.claim("gopro", media_id, owner="w", run_id="old-run", lease_seconds=60)
        assert rig.state.media.complete(
            "gopro",
            media_id,
            owner="w",
            s3_key=f"k/{media_id}",
            size=1,
            checksum=Checksum("CRC32C", "AAAAAA=="),
            duration_s=1.0,
        )


def runs(rig: Rig) -> list[str]:
    return [run.run_id for run in rig.state.runs.latest(10)]


def test_a_first_night_enqueues_every_new_video_and_records_the_run() -> None:
    rig = Rig()
    rig.provider.add(video(1), video(2), video(3), video(4, media_type=MediaType.PHOTO))
    outcome = rig.listing().run(ListingRequest(), now=rig.clock())

    assert outcome.mode is ListingMode.FULL
    assert outcome.done
    assert sorted(rig.sqs.queued_media_ids()) == ["vid000001", "vid000002", "vid000003"]
    run = rig.state.runs.get(outcome.run_id)
    assert run is not None
    assert (run.listed, run.enqueued, run.skipped, run.listing_done) == (4, 3, 1, True)
    assert runs(rig) == [outcome.run_id]
    cursor = ListingCursor.from_json(rig.state.cursors.get("gopro"))
    assert cursor.high_water_mark == video(1).created_at  # the newest medium dealt with
    assert cursor.last_full_reconcile_at == rig.clock()
    assert rig.metrics.total(Metric.VIDEOS_ENQUEUED) == 3
    assert rig.sns.published == []  # something was queued: the drain alarm reports, not the listing


def test_a_second_incremental_night_with_nothing_new_sends_nothing_and_creates_no_run() -> None:
    rig = Rig()
    rig.provider.add(video(1), video(2))
    first = rig.listing().run(ListingRequest(), now=rig.clock())
    batches_after_first = len(rig.sqs.batches)

    second = rig.listing().run(ListingRequest(), now=rig.clock.advance(days=1))

    assert second.mode is ListingMode.INCREMENTAL
    assert (second.listed, second.enqueued) == (0, 0)
    assert len(rig.sqs.batches) == batches_after_first
    assert runs(rig) == [first.run_id]  # no run record for the quiet night
    assert rig.state.runs.get(second.run_id) is None
    assert rig.sns.published == []


def test_an_incremental_night_whose_new_media_are_archived_already_creates_no_run() -> None:
    """A medium enqueued by hand and archived before the night is new to the listing, yet nothing to do."""
    rig = Rig()
    rig.provider.add(video(1))
    first = rig.listing().run(ListingRequest(), now=rig.clock())
    now = rig.clock.advance(days=1)
    rig.provider.add(video(99, created=now - timedelta(hours=1)))
    archive(rig, "vid000099")

    second = rig.listing().run(ListingRequest(), now=now)

    assert (second.listed, second.already_archived, second.enqueued) == (1, 1, 0)
    assert runs(rig) == [first.run_id]


def test_an_incremental_night_enqueues_only_what_is_newer_than_the_mark() -> None:
    rig = Rig()
    rig.provider.add(video(1), video(2))
    rig.listing().run(ListingRequest(), now=rig.clock())
    now = rig.clock.advance(days=1)
    rig.provider.add(video(99, created=now - timedelta(hours=1)))

    second = rig.listing().run(ListingRequest(), now=now)

    assert second.mode is ListingMode.INCREMENTAL
    assert rig.sqs.queued_media_ids()[-1:] == ["vid000099"]
    assert second.enqueued == 1
    assert second.listed == 1  # the provider was asked only for what is newer than the mark
    run = rig.state.runs.get(second.run_id)
    assert run is not None
    assert (run.enqueued, run.listing_done) == (1, True)


def test_a_video_still_processing_holds_the_mark_and_is_enqueued_once_ready() -> None:
    rig = Rig()
    processing = video(2, ready=False, ready_state="transcoding")
    rig.provider.add(video(1), processing, video(3))
    first = rig.listing().run(ListingRequest(), now=rig.clock())
    assert "vid000002" not in rig.sqs.queued_media_ids()
    assert first.skipped["not_ready"] == 1
    cursor = ListingCursor.from_json(rig.state.cursors.get("gopro"))
    assert cursor.high_water_mark is not None
    assert processing.created_at is not None
    assert cursor.high_water_mark < processing.created_at  # held below it, not at the newest video

    rig.provider.add(video(2))  # ready now
    second = rig.listing().run(ListingRequest(), now=rig.clock.advance(days=1))

    assert second.mode is ListingMode.INCREMENTAL
    assert rig.sqs.queued_media_ids().count("vid000002") == 1
    assert rig.sqs.queued_media_ids().count("vid000003") == 1  # older than the held one: not listed again
    assert second.listed == 2  # the held video and the one newer than it (not archived yet: queued again)


def test_a_night_out_of_time_hands_over_and_its_continuation_finishes_the_run() -> None:
    rig = Rig()
    rig.provider.page_size = 2
    rig.provider.add(*(video(n) for n in range(1, 6)))  # three pages
    mono = Monotonic()
    request = ListingRequest()
    outcomes = []
    while True:
        deadline = Deadline.in_seconds(1, clock=mono)  # always about to expire
        outcome = rig.listing().run(request, deadline=deadline, function_arn=FUNCTION_ARN, now=rig.clock())
        outcomes.append(outcome)
        if outcome.done:
            break
        invoked = rig.lambda_client.invocations[-1]
        assert invoked["FunctionName"] == FUNCTION_ARN
        assert invoked["InvocationType"] == "Event"
        request = ListingRequest.from_event(json.loads(invoked["Payload"]))
        in_progress = ListingCursor.from_json(rig.state.cursors.get("gopro")).in_progress
        assert in_progress is not None
        assert in_progress.run_id == outcome.run_id

    assert [o.next_page for o in outcomes] == [2, 3, None]
    assert len(rig.lambda_client.invocations) == 2
    assert len({o.run_id for o in outcomes}) == 1  # one run, continued
    assert sorted(rig.sqs.queued_media_ids()) == [f"vid{n:06d}" for n in range(1, 6)]  # each once
    run = rig.state.runs.get(outcomes[0].run_id)
    assert run is not None
    assert (run.listed, run.enqueued, run.listing_done) == (5, 5, True)
    cursor = ListingCursor.from_json(rig.state.cursors.get("gopro"))
    assert cursor.in_progress is None
    assert cursor.high_water_mark == video(1).created_at


def test_a_completed_medium_is_not_enqueued_again() -> None:
    rig = Rig()
    rig.provider.add(video(1), video(2), video(3))
    archive(rig, "vid000002")

    outcome = rig.listing().run(ListingRequest(), now=rig.clock())

    assert sorted(rig.sqs.queued_media_ids()) == ["vid000001", "vid000003"]
    assert (outcome.enqueued, outcome.already_archived) == (2, 1)


def test_a_medium_pending_without_a_live_message_is_enqueued_again() -> None:
    rig = Rig()
    rig.provider.add(video(1))
    assert rig.state.media.claim("gopro", "vid000001", owner="w", run_id="old", lease_seconds=60)
    assert rig.state.media.release("gopro", "vid000001", owner="w", error="boom")  # no message noted queued

    rig.listing().run(ListingRequest(), now=rig.clock())

    assert rig.sqs.queued_media_ids() == ["vid000001"]


def test_a_failed_medium_is_the_operators_to_redrive_not_the_listings() -> None:
    """Its message is in the DLQ: a redrive sends it again; a listing that did too would make two."""
    rig = Rig()
    rig.provider.add(video(1))
    assert rig.state.media.claim("gopro", "vid000001", owner="w", run_id="old", lease_seconds=60)
    assert rig.state.media.fail("gopro", "vid000001", owner="w", error="boom")

    rig.listing().run(ListingRequest(), now=rig.clock())

    assert rig.sqs.queued_media_ids() == []


@pytest.mark.parametrize(
    ("days_failed", "queued"),
    [(resources.DLQ_RETENTION_DAYS + 1, True), (resources.DLQ_RETENTION_DAYS - 1, False)],
)
def test_a_full_night_tries_again_a_medium_failed_longer_ago_than_the_dlq_keeps_its_message(
    days_failed: int, queued: bool
) -> None:
    """Past the DLQ's retention no redrive can bring the medium back: a full night gives it another try (and
    clears its old queued mark, so a night that leaves it waiting does not count an expired message)."""
    rig = Rig()
    rig.provider.add(video(1))
    assert rig.state.media.claim("gopro", "vid000001", owner="w", run_id="old", lease_seconds=60)
    assert rig.state.media.fail("gopro", "vid000001", owner="w", error="boom")
    rig.clock.advance(days=days_failed)

    rig.listing().run(ListingRequest(force_full=True), now=rig.clock())

    assert rig.sqs.queued_media_ids() == (["vid000001"] if queued else [])
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.status is (MediaStatus.PENDING if queued else MediaStatus.FAILED)


@pytest.mark.parametrize(
    ("error", "auth_failures"),
    [(ProviderUnavailable("the library is down"), 0), (AuthError("token revoked", reauth_required=True), 1)],
)
def test_a_failed_listing_records_lister_error_and_the_failure_metric(
    error: Exception, auth_failures: int
) -> None:
    rig = Rig()
    rig.provider.add(video(1))
    rig.provider.list_error = error

    with pytest.raises(type(error)):
        rig.listing().run(ListingRequest(), now=rig.clock())

    [run_id] = runs(rig)
    run = rig.state.runs.get(run_id)
    assert run is not None
    assert run.lister_error is not None
    assert run.lister_error.startswith(type(error).__name__)
    assert run.listing_done  # the summary may report it
    assert rig.metrics.total(Metric.LISTER_FAILURES) == 1
    assert rig.metrics.total(Metric.AUTHENTICATION_FAILURES) == auth_failures
    assert rig.sqs.batches == []


def test_a_listing_failing_midway_keeps_the_counts_of_what_it_queued() -> None:
    rig = Rig()
    rig.provider.page_size = 1
    rig.provider.add(video(1), video(2))
    rig.provider.list_error = ProviderUnavailable("page 2 timed out")
    rig.provider.fail_after_pages = 1

    with pytest.raises(ProviderUnavailable):
        rig.listing().run(ListingRequest(), now=rig.clock())

    assert rig.sqs.queued_media_ids() == ["vid000001"]
    [run_id] = runs(rig)
    run = rig.state.runs.get(run_id)
    assert run is not None
    assert (run.listed, run.enqueued, run.listing_done) == (1, 1, True)
    assert run.lister_error is not None
    assert ListingCursor.from_json(rig.state.cursors.get("gopro")).high_water_mark is None  # the night is redone


def test_a_full_night_with_nothing_queued_reports_at_once() -> None:
    rig = Rig()
    rig.provider.add(video(1), video(2))
    archive(rig, "vid000001", "vid000002")

    outcome = rig.listing().run(ListingRequest(force_full=True), now=rig.clock())

    assert outcome.mode is ListingMode.FULL
    assert outcome.enqueued == 0
    assert len(rig.sns.published) == 1
    run = rig.state.runs.get(outcome.run_id)
    assert run is not None
    assert run.report_sent_at is not None
    assert "OK" in rig.sns.published[0]["Subject"]


def test_a_quiet_night_is_reported_when_asked() -> None:
    rig = Rig(settings=settings(report_quiet_nights=True))
    rig.provider.add(video(1))
    rig.listing().run(ListingRequest(), now=rig.clock())

    quiet = rig.listing().run(ListingRequest(), now=rig.clock.advance(days=1))

    assert quiet.mode is ListingMode.INCREMENTAL
    [published] = rig.sns.published
    assert published["Subject"].startswith("[gopro-sync dev] OK: 0 archived")


def test_media_sqs_refused_keep_the_mark_so_the_next_night_lists_them_again() -> None:
    rig = Rig()
    rig.provider.add(video(1), video(2))
    rig.sqs.refuse = {"vid000001"}

    first = rig.listing().run(ListingRequest(), now=rig.clock())

    assert first.send_failures == ["vid000001"]
    run = rig.state.runs.get(first.run_id)
    assert run is not None
    assert run.lister_error == "1 media could not be enqueued"
    cursor = ListingCursor.from_json(rig.state.cursors.get("gopro"))
    assert cursor.high_water_mark is None  # nothing moved: the next night lists the same media again

    rig.sqs.refuse = set()
    second = rig.listing().run(ListingRequest(), now=rig.clock.advance(days=1))
    assert second.mode is ListingMode.FULL
    assert rig.sqs.queued_media_ids().count("vid000001") == 1


def test_a_failed_listing_that_queued_nothing_sends_its_critical_report_at_once() -> None:
    rig = Rig()
    rig.provider.add(video(1))
    rig.provider.list_error = AuthError("token revoked", reauth_required=True)

    with pytest.raises(AuthError):
        rig.listing().run(ListingRequest(), now=rig.clock())

    [published] = rig.sns.published
    assert "CRITICAL: the listing failed" in published["Subject"]


def test_a_night_whose_queue_drained_before_its_listing_ended_is_still_reported() -> None:
    rig = Rig()
    rig.provider.page_size = 1
    rig.provider.add(video(1), video(2))  # page 1: new; page 2: already archived
    archive(rig, "vid000002")
    mono = Monotonic()
    first = rig.listing().run(ListingRequest(), deadline=Deadline.in_seconds(1, clock=mono), now=rig.clock())
    assert first.next_page == 2
    downloader = rig.downloader()
    for queued in rig.sqs.queued():
        downloader.process(delivery(queued))
    rig.sqs.queue_depth = 0  # the event source mapping deleted what the downloader acknowledged
    assert rig.summary().report(first.run_id) is None  # the drain alarm: still listing, the report waits

    request = ListingRequest(run_id=first.run_id, correlation_id="c-1", page=2)
    last = rig.listing().run(request, now=rig.clock())

    assert last.done
    assert len(rig.sns.published) == 1


def _throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, operation)


def test_a_write_that_fails_for_one_medium_leaves_it_waiting_and_the_night_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No single bad answer may stop a night: a throttled queued-mark (past botocore's retries) leaves that
    medium PENDING, counted waiting, for the next night; a throttled PENDING record holds the cursor."""
    rig = Rig()
    rig.provider.add(video(1), video(2), video(3))
    mark, register = rig.state.media.mark_queued, rig.state.media.register_pending

    def flaky_mark(provider: str, media_id: str, **kw: Any) -> bool:
        if media_id == "vid000001":
            raise _throttled("UpdateItem")
        return mark(provider, media_id, **kw)

    def flaky_register(provider: str, media_id: str, **kw: Any) -> bool:
        if media_id == "vid000002":
            raise _throttled("PutItem")
        return register(provider, media_id, **kw)

    monkeypatch.setattr(rig.state.media, "mark_queued", flaky_mark)
    monkeypatch.setattr(rig.state.media, "register_pending", flaky_register)

    outcome = rig.listing().run(ListingRequest(), now=rig.clock())

    assert rig.sqs.queued_media_ids() == ["vid000003"]
    assert outcome.send_failures == ["vid000002"]  # the cursor holds: the next night lists it again
    waiting = rig.state.media.get("gopro", "vid000001")
    assert waiting is not None
    assert waiting.status is MediaStatus.PENDING
    [run_id] = runs(rig)
    notes = json.loads(rig.state.runs.get(run_id).listing_notes)
    assert notes["backlog"]["waiting"] == 1
