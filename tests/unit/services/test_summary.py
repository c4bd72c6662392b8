"""`SummaryService` against the in-memory state store: one report per run, a subject that tells the truth."""

from __future__ import annotations

import json

import pytest

from pipeline.services.summary import Outcome
from tests.unit.services.fakes import TOPIC_ARN, Rig

RUN_ID = "20260301T020000Z-abcdef01"


def night(rig: Rig, *, done: bool = True, lister_error: str | None = None, **counters: int) -> None:
    """A run record as the listing and the downloaders leave it."""
    rig.state.runs.create(RUN_ID, correlation_id="c-1", started_at=rig.clock(), provider="gopro")
    if counters:
        rig.state.runs.update(RUN_ID, **counters)
    if done:
        rig.state.runs.finish_listing(RUN_ID, lister_error=lister_error)


def failed_medium(rig: Rig, media_id: str, error: str, run_id: str = RUN_ID) -> None:
    filename = f"GX01{media_id[-4:]}.MP4"
    assert rig.state.media.claim("gopro", media_id, owner="w", run_id=run_id, lease_seconds=60, filename=filename)
    assert rig.state.media.fail("gopro", media_id, owner="w", error=error)


def test_one_report_per_run_even_when_asked_twice() -> None:
    rig = Rig()
    night(rig, listed=2, enqueued=2, synced=2, bytes_transferred=2_000_000, transfer_seconds=2)

    first = rig.summary().report(RUN_ID, now=rig.clock.advance(minutes=30))
    second = rig.summary().report(RUN_ID, now=rig.clock.advance(minutes=1))  # the alarm fires again
    latest = rig.summary().report(now=rig.clock.advance(minutes=1))  # or asks for "the latest run"

    assert first is not None
    assert first.outcome is Outcome.OK
    assert second is None
    assert latest is None
    [published] = rig.sns.published
    assert published["TopicArn"] == TOPIC_ARN
    run = rig.state.runs.get(RUN_ID)
    assert run is not None
    assert run.report_sent_at is not None


def test_a_second_trigger_while_the_first_is_publishing_sends_nothing() -> None:
    """The drain alarm and the listing ask at the same moment: the claim, not the sent mark, keeps it to one."""
    rig = Rig()
    night(rig, listed=1, enqueued=1, synced=1)
    racing: list[object] = []
    rig.sns.during_publish = lambda: racing.append(rig.summary().report(RUN_ID))

    assert rig.summary().report(RUN_ID) is not None

    assert racing == [None]
    assert len(rig.sns.published) == 1


def test_a_publish_that_fails_hands_the_claim_back_for_the_retry() -> None:
    rig = Rig()
    night(rig, listed=1, enqueued=1, synced=1)
    rig.sns.error = RuntimeError("SNS is down")

    with pytest.raises(RuntimeError):
        rig.summary().report(RUN_ID)
    rig.sns.error = None
    retried = rig.summary().report(RUN_ID)

    assert retried is not None
    assert len(rig.sns.published) == 1


def test_the_subject_says_ok_when_everything_was_archived() -> None:
    rig = Rig()
    night(rig, listed=3, enqueued=3, synced=3, bytes_transferred=3_000_000)

    rig.summary().report(RUN_ID)

    [published] = rig.sns.published
    assert published["Subject"] == "[gopro-sync dev] OK: 3 archived (3.0 MB)"


def test_the_subject_reflects_failures() -> None:
    rig = Rig()
    night(rig, listed=3, enqueued=3, synced=2, failed=1, bytes_transferred=2_000_000)
    failed_medium(rig, "vid000003", "ProviderUnavailable: 503 from the CDN")

    report = rig.summary().report(RUN_ID)

    assert report is not None
    assert report.outcome is Outcome.PARTIAL
    [published] = rig.sns.published
    assert published["Subject"] == "[gopro-sync dev] PARTIAL: 2 archived (2.0 MB), 1 failed"
    assert "GX010003.MP4 (vid000003): ProviderUnavailable: 503 from the CDN" in published["Message"]
    document = json.loads(published["Message"].split("--- JSON ---\n", 1)[1])
    assert document["failed"] == 1
    assert [f["media_id"] for f in document["failures"]] == ["vid000003"]


def test_messages_left_on_the_dlq_make_a_partial_failure() -> None:
    rig = Rig()
    night(rig, listed=1, enqueued=1, synced=1)
    rig.sqs.dlq_depth = 2

    report = rig.summary().report(RUN_ID)

    assert report is not None
    assert report.outcome is Outcome.PARTIAL
    assert report.dlq_depth == 2


def test_the_subject_says_the_listing_failed_when_nothing_was_queued() -> None:
    rig = Rig()
    night(rig, lister_error="AuthError: token revoked")

    report = rig.summary().report(RUN_ID)

    assert report is not None
    assert report.outcome is Outcome.CRITICAL
    [published] = rig.sns.published
    assert published["Subject"] == "[gopro-sync dev] CRITICAL: the listing failed (AuthError)"


def test_the_report_is_not_sent_while_the_listing_is_still_in_progress() -> None:
    rig = Rig()
    night(rig, done=False, listed=100, enqueued=100, synced=100)  # the queue drained between two pages

    assert rig.summary().report(RUN_ID) is None
    assert rig.sns.published == []

    rig.state.runs.finish_listing(RUN_ID)
    assert rig.summary().report(RUN_ID) is not None
    assert len(rig.sns.published) == 1
