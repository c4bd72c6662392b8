"""Backfills that fit the queue (issue 12 point 3): the budget, what a night queues, one live message per medium,
expired messages, the report's facts and the night plan, over the in-memory state store."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest

from pipeline import resources
from pipeline.clock import iso_utc
from pipeline.deadline import Deadline
from pipeline.observability.metrics import Metric
from pipeline.providers.base import MediaType
from pipeline.services import backlog as bl
from pipeline.services import candidates
from pipeline.services.backlog import BudgetSource, Candidate, NightBudget
from pipeline.services.listing_models import ListingCursor, ListingProgress, ListingRequest
from pipeline.services.listing_notes import ListingNotes
from pipeline.services.night_plan import NightPlanner
from pipeline.state import MediaStatus, RunRecord
from tests.unit.services.fakes import FUNCTION_ARN, START, Monotonic, Rig, settings, video

# Videos are 1000 + n bytes: two of them fit, a third does not.
TWO_VIDEOS = 2500


def run(**counters: Any) -> RunRecord:
    return RunRecord(
        run_id="r", provider="gopro", correlation_id="c", started_at="2026-01-01T00:00:00Z", **counters
    )


def budget_rig(budget: int = TWO_VIDEOS, count: int = 5) -> Rig:
    rig = Rig(settings=settings(nightly_budget_bytes=budget))
    rig.provider.add(*(video(n) for n in range(1, count + 1)))
    return rig


def notes(rig: Rig, run_id: str) -> dict[str, Any]:
    record = rig.state.runs.get(run_id)
    assert record is not None
    assert record.listing_notes
    return json.loads(record.listing_notes)


def sent_since(rig: Rig, before: int) -> list[str]:
    return rig.sqs.queued_media_ids()[before:]


# --- the budget, pure ------------------------------------------------------------------------------------------


def test_the_setting_overrides_any_measurement() -> None:
    budget = bl.nightly_budget(setting=123, throughput=1e9)
    assert (budget.bytes, budget.source) == (123, BudgetSource.SETTING)


def test_the_measured_budget_is_the_median_pace_times_downloaders_hours_and_safety() -> None:
    runs = [
        run(bytes_transferred=100, transfer_seconds=1.0),  # 100 B/s
        run(bytes_transferred=600, transfer_seconds=2.0),  # 300 B/s
        run(bytes_transferred=10_000, transfer_seconds=1.0),  # an outlier: the median ignores it
        run(bytes_transferred=0, transfer_seconds=0.0),  # transferred nothing: not a sample
    ]
    pace = bl.per_download_throughput(runs)
    assert pace == 300
    budget = bl.nightly_budget(setting=0, throughput=pace)
    expected = int(300 * resources.DOWNLOADER_MAX_CONCURRENCY * bl.WORKING_HOURS * 3600 * bl.SAFETY_FACTOR)
    assert (budget.bytes, budget.source) == (expected, BudgetSource.MEASURED)


def test_without_history_the_conservative_default_pace_is_used() -> None:
    assert bl.per_download_throughput([run()]) is None
    budget = bl.nightly_budget(setting=0, throughput=None)
    default = bl.DEFAULT_PER_DOWNLOAD_BYTES_PER_SECOND
    assert budget.source is BudgetSource.DEFAULT
    assert budget.bytes == int(default * resources.DOWNLOADER_MAX_CONCURRENCY * 20 * 3600 * 0.8)


def test_at_least_one_medium_a_night_even_when_it_alone_exceeds_the_budget() -> None:
    budget = NightBudget(budget_bytes=10, source="setting")
    big, small = Candidate("big", "big.mp4", size=1000), Candidate("small", "s.mp4", size=1)
    assert bl.select([big, small], budget, from_backlog=False) == [big]
    # The order is kept: once a medium did not fit, the small one after it waits too.
    assert (budget.queued, budget.waiting, budget.waiting_bytes) == (1, 1, 1)


def test_a_medium_of_unknown_size_costs_a_large_video() -> None:
    assert Candidate("x", "x.mp4").cost == candidates.UNKNOWN_SIZE_BYTES


def test_the_recent_runs_in_the_cursor_measure_the_budget() -> None:
    rig = budget_rig(budget=0, count=1)
    first = rig.listing().run(ListingRequest(), now=rig.clock())
    rig.state.runs.update(first.run_id, bytes_transferred=4_000, transfer_seconds=2.0)  # 2,000 B/s a download
    rig.clock.advance(days=1)
    rig.provider.add(video(50, created=rig.clock() - timedelta(hours=1)))
    second = rig.listing().run(ListingRequest(), now=rig.clock())
    facts = notes(rig, second.run_id)["backlog"]
    assert facts["budget_source"] == "measured"
    assert facts["nightly_budget_bytes"] == bl.nightly_budget(setting=0, throughput=2000.0).bytes


# --- what a night queues ---------------------------------------------------------------------------------------


def test_a_first_night_queues_its_budget_and_leaves_the_rest_pending_with_their_facts() -> None:
    rig = budget_rig()
    outcome = rig.listing().run(ListingRequest(), now=rig.clock())

    assert rig.sqs.queued_media_ids() == ["vid000001", "vid000002"]  # the provider's order, until the budget
    assert outcome.enqueued == 2
    waiting = rig.state.media.get("gopro", "vid000005")
    assert waiting is not None
    assert waiting.status is MediaStatus.PENDING
    assert (waiting.filename, waiting.size, waiting.media_type, waiting.queued_until) == (
        "GX010005.MP4",
        1005,
        "video",
        None,
    )
    facts = notes(rig, outcome.run_id)["backlog"]
    assert (facts["waiting"], facts["waiting_bytes"], facts["budget_source"]) == (3, 1003 + 1004 + 1005, "setting")
    assert facts["ends_at"] == (rig.clock() + timedelta(days=2)).date().isoformat()  # 3,012 bytes at 2,500 a night
    assert rig.metrics.total(Metric.BACKLOG_WAITING) == 3


def test_waiting_media_go_first_oldest_first_then_tonights_new_ones_and_no_weekly_reconcile_is_needed() -> None:
    rig = budget_rig()
    rig.listing().run(ListingRequest(), now=rig.clock())
    before = len(rig.sqs.queued_media_ids())
    now = rig.clock.advance(days=1)
    rig.provider.add(video(99, created=now - timedelta(hours=1)))

    second = rig.listing().run(ListingRequest(), now=now)

    assert second.mode.value == "incremental"  # the waiting ones are not listed again: the table has them
    assert sent_since(rig, before) == ["vid000003", "vid000004"]  # the backlog first; the new one waits
    facts = notes(rig, second.run_id)["backlog"]
    assert (facts["queued_from_backlog"], facts["waiting"]) == (2, 2)  # vid000005 and vid000099

    before = len(rig.sqs.queued_media_ids())
    rig.listing().run(ListingRequest(), now=rig.clock.advance(days=1))
    assert sent_since(rig, before) == ["vid000005", "vid000099"]


def test_a_medium_with_a_live_message_is_never_queued_again_full_night_or_not() -> None:
    rig = budget_rig(budget=10**9, count=2)
    rig.listing().run(ListingRequest(), now=rig.clock())
    assert rig.sqs.queued_media_ids() == ["vid000001", "vid000002"]
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.queued_until == rig.clock() + timedelta(days=resources.QUEUE_RETENTION_DAYS)

    for full in (False, True):
        rig.listing().run(ListingRequest(force_full=full), now=rig.clock.advance(days=1))
    assert rig.sqs.queued_media_ids() == ["vid000001", "vid000002"]  # still live: no second message


def test_overlapping_listings_never_both_send_a_medium() -> None:
    rig = budget_rig(budget=10**9, count=1)
    rig.listing().run(ListingRequest(), now=rig.clock())
    # A second listing that read the record before the first marked it: the conditional mark refuses it.
    assert not rig.state.media.mark_queued("gopro", "vid000001", run_id="other", retention_days=14)


def test_an_expired_message_is_counted_alarmed_and_the_medium_queued_again() -> None:
    rig = budget_rig(budget=10**9, count=2)
    rig.listing().run(ListingRequest(), now=rig.clock())
    rig.state.media.claim("gopro", "vid000002", owner="w", run_id="r", lease_seconds=60)  # taken, still working
    rig.sqs.batches.clear()  # the messages expired unprocessed (SQS dropped them)

    now = rig.clock.advance(days=resources.QUEUE_RETENTION_DAYS, seconds=1)
    later = rig.listing().run(ListingRequest(), now=now)

    # vid000001 waited PENDING past its message's retention: expired; vid000002 is IN_PROGRESS past its lease.
    assert sorted(rig.sqs.queued_media_ids()) == ["vid000001", "vid000002"]
    assert rig.metrics.total(Metric.MESSAGES_EXPIRED) == 1
    assert notes(rig, later.run_id)["backlog"]["expired"] == 1


def test_abandoned_media_carry_their_type_and_item_count_and_count_against_the_budget() -> None:
    rig = Rig(settings=settings(nightly_budget_bytes=1, include_photos=True))
    rig.provider.add(video(1, media_type=MediaType.BURST, item_count=7), video(2))
    rig.listing().run(ListingRequest(), now=rig.clock())
    assert rig.sqs.queued_media_ids() == ["vid000001"]  # one medium a night, however small the budget
    assert rig.state.media.claim("gopro", "vid000001", owner="w", run_id="r", lease_seconds=60)

    rig.listing().run(ListingRequest(), now=rig.clock.advance(days=1))

    body = json.loads(rig.sqs.queued()[-1]["Body"])
    assert (body["media_id"], body["media_type"], body["item_count"]) == ("vid000001", "burst", 7)
    assert rig.sqs.queued_media_ids().count("vid000002") == 0  # the budget went to the abandoned one


def test_a_message_that_could_not_be_sent_is_unmarked_and_waits() -> None:
    rig = budget_rig(budget=10**9, count=1)
    rig.sqs.refuse.add("vid000001")
    rig.listing().run(ListingRequest(), now=rig.clock())
    record = rig.state.media.get("gopro", "vid000001")
    assert record is not None
    assert record.queued_until is None  # not marked: the next night sends it
    rig.sqs.refuse.clear()
    rig.listing().run(ListingRequest(), now=rig.clock.advance(days=1))
    assert rig.sqs.queued_media_ids() == ["vid000001"]


def test_a_failed_unmark_after_a_failed_send_does_not_stop_the_night(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mark of an unsent message could not be removed either: the night goes on, and the medium waits for
    its mark to lapse with the queue's retention (then it is queued again, counted as an expired message)."""
    from botocore.exceptions import ClientError

    rig = budget_rig(budget=10**9, count=2)
    rig.sqs.refuse.add("vid000001")

    def throttled(*_a: Any, **_k: Any) -> bool:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")

    monkeypatch.setattr(rig.state.media, "unmark_queued", throttled)
    outcome = rig.listing().run(ListingRequest(), now=rig.clock())

    assert outcome.send_failures == ["vid000001"]
    assert rig.sqs.queued_media_ids() == ["vid000002"]
    rig.sqs.refuse.clear()
    rig.listing().run(ListingRequest(), now=rig.clock.advance(days=resources.QUEUE_RETENTION_DAYS, seconds=1))
    assert rig.sqs.queued_media_ids().count("vid000001") == 1


def test_a_continuation_keeps_the_budget_already_spent_tonight() -> None:
    rig = Rig(settings=settings(nightly_budget_bytes=TWO_VIDEOS + 1003))
    rig.provider.page_size = 2
    rig.provider.add(*(video(n) for n in range(1, 7)))  # three pages
    mono = Monotonic()
    request = ListingRequest()
    invocations = 0
    while True:
        deadline = Deadline.in_seconds(1, clock=mono)  # always about to expire: one page an invocation
        outcome = rig.listing().run(request, deadline=deadline, function_arn=FUNCTION_ARN, now=rig.clock())
        invocations += 1
        if outcome.done:
            break
        request = ListingRequest.from_event(json.loads(rig.lambda_client.invocations[-1]["Payload"]))
    assert invocations == 3
    # 3,006 bytes fit the 3,503 of tonight; a budget started afresh by each invocation would have queued 4 or 6.
    assert rig.sqs.queued_media_ids() == ["vid000001", "vid000002", "vid000003"]


# --- the report's facts ----------------------------------------------------------------------------------------


def test_the_notes_carry_the_mode_the_library_and_the_backlog() -> None:
    rig = budget_rig()
    first = rig.listing().run(ListingRequest(), now=rig.clock())
    document = notes(rig, first.run_id)
    assert document["mode"] == "full"
    assert document["library"] == {"size": 5, "listed_at": iso_utc(rig.clock())}
    assert set(document["backlog"]) == {
        "waiting",
        "waiting_bytes",
        "queued_from_backlog",
        "nightly_budget_bytes",
        "budget_source",
        "ends_at",
        "expired",
    }
    rig.provider.add(video(99, created=rig.clock.advance(days=1) - timedelta(hours=1)))
    second = rig.listing().run(ListingRequest(), now=rig.clock())
    later = notes(rig, second.run_id)
    assert later["mode"] == "incremental"
    assert later["library"] == document["library"]  # as last fully listed


def test_a_library_never_fully_listed_has_no_library_key() -> None:
    assert "library" not in ListingNotes().report_json()
    assert ListingCursor().library is None
    orphan = ListingProgress.orphan("run-9")  # a continuation the cursor does not know: stores no library
    moved = ListingCursor().finished(orphan, now=START, hold_window=timedelta(days=7))
    assert moved.library is None


# --- the night plan --------------------------------------------------------------------------------------------


def test_the_night_plan_tells_what_the_listing_then_does_and_writes_nothing() -> None:
    rig = budget_rig()
    rig.listing().run(ListingRequest(), now=rig.clock())
    now = rig.clock.advance(days=1)
    rig.provider.add(
        video(99, created=now - timedelta(hours=1)),
        video(98, created=now - timedelta(minutes=30), media_type=MediaType.PHOTO),
    )
    table_before = copy.deepcopy(rig.state.table.items)
    sent_before = len(rig.sqs.queued_media_ids())

    plan = NightPlanner(settings=rig.settings, provider=rig.provider, state=rig.state).plan(now)

    assert rig.state.table.items == table_before  # no record written, none marked
    assert len(rig.sqs.queued_media_ids()) == sent_before  # no message sent
    document = plan.as_json()
    assert document["mode"] == "incremental"
    assert [m["media_id"] for m in document["would_queue"]["media"]] == ["vid000003", "vid000004"]
    assert document["backlog"]["waiting"] == 2
    assert document["skipped"] == {"not_a_video": 1}
    text = "\n".join(plan.lines())
    assert "Would queue 2 media" in text
    assert "GX010003.MP4" in text
    assert "not_a_video 1" in text

    rig.listing().run(ListingRequest(), now=now)
    assert sent_since(rig, sent_before) == ["vid000003", "vid000004"]  # the plan was the listing's own


@pytest.mark.parametrize("budget", [0, -1])
def test_a_negative_budget_setting_is_refused(budget: int) -> None:
    if budget < 0:
        with pytest.raises(ValueError, match="NIGHTLY_BUDGET_BYTES"):
            settings(nightly_budget_bytes=budget)
    else:
        assert settings(nightly_budget_bytes=budget).nightly_budget_bytes == 0


def test_a_quiet_night_may_skip_the_pending_query_only_until_a_live_message_could_expire() -> None:
    now = START
    week = iso_utc(now + timedelta(days=7))
    budget = NightBudget()
    budget.note_live(now + timedelta(days=14))
    budget.note_live(now + timedelta(days=3))  # the earliest one decides
    assert budget.clear_until(now, week, days=7) == iso_utc(now + timedelta(days=3))
    assert NightBudget().clear_until(now, week, days=7) == week  # nothing live: kept while ahead (no write)
    assert NightBudget().clear_until(now, None, days=7) == week
    budget.wait(10)
    assert budget.clear_until(now, week, days=7) is None  # media wait: every night reads them
    assert NightBudget.pending_due(None, now)
    assert not NightBudget.pending_due(week, now)
    assert NightBudget.pending_due(week, now + timedelta(days=7))


def test_a_waiting_medium_s_message_carries_the_listing_facts_kept_in_its_pending_record() -> None:
    """A medium queued on a later night is built from its record, not the listing row: the facts its sidecar
    keeps (camera, title, ...) must survive the wait, and an odd stored fact must not stop it being queued."""
    from pipeline.state import StateStore

    store = StateStore.in_memory()
    facts = {"camera_model": "HERO12 Black", "title": "Dive", "duration_s": 61.5, "width": 3840, "height": 2160}
    assert store.media.register_pending(
        "gopro",
        "m1",
        run_id="r1",
        filename="GX01.MP4",
        size=10,
        captured_at=None,
        media_type="Video",
        item_count=1,
        listing_facts={**facts, "moments_count": None},
    )
    record = store.media.get("gopro", "m1")
    message = Candidate.from_record(record).message(run_id="r2", correlation_id="c", provider="gopro")
    assert (message.camera_model, message.title, message.duration_s, message.width, message.height) == (
        "HERO12 Black",
        "Dive",
        61.5,
        3840,
        2160,
    )
    assert message.moments_count is None
    odd = candidates.known_facts({"width": "wide", "title": 7, "camera_model": "HERO9", "unknown": 1})
    assert odd == {"camera_model": "HERO9"}
