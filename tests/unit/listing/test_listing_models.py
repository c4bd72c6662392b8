"""The listing's pure values: requests, the cursor's plan and its move at the end of a night, progress, outcome."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.errors import SyncError
from pipeline.services.listing_models import (
    RECONCILE_SLACK,
    BadListerEvent,
    ListingCursor,
    ListingMode,
    ListingOutcome,
    ListingPlan,
    ListingProgress,
    ListingRequest,
    RunCounts,
    SkipReason,
)

NOW = datetime(2025, 3, 8, 2, 0, tzinfo=UTC)
MARK = datetime(2025, 3, 7, 23, 59, 30, 123456, tzinfo=UTC)
WEEK = timedelta(days=7)


# --- requests ------------------------------------------------------------------------------------------------


def test_a_scheduled_event_starts_a_night_with_its_event_id_as_correlation_id() -> None:
    request = ListingRequest.from_event({"source": "aws.scheduler", "id": "evt-1"})
    assert request == ListingRequest(correlation_id="evt-1")
    assert not request.continued
    assert request.page == 1


@pytest.mark.parametrize("event", [None, [], "text", {}])
def test_anything_else_from_the_scheduler_starts_a_night(event: Any) -> None:
    assert ListingRequest.from_event(event) == ListingRequest()


def test_only_a_true_full_reconcile_forces_a_full_listing() -> None:
    assert ListingRequest.from_event({"full_reconcile": True}).force_full
    assert not ListingRequest.from_event({"full_reconcile": "yes"}).force_full


def test_a_continuation_round_trips() -> None:
    event = ListingRequest.continuation_event("run-1", "corr-1", 3)
    request = ListingRequest.from_event(event)
    assert request == ListingRequest(run_id="run-1", correlation_id="corr-1", page=3)
    assert request.continued


@pytest.mark.parametrize(
    "continuation",
    [
        "run-1",
        {"run_id": "x", "page": "two"},
        {"run_id": "x", "correlation_id": "c", "page": 0},
        {"run_id": 1, "correlation_id": "c", "page": 2},
        {"run_id": "x", "correlation_id": None, "page": 2},
    ],
)
def test_a_malformed_continuation_is_refused_clearly(continuation: Any) -> None:
    with pytest.raises(BadListerEvent, match="continuation needs") as caught:
        ListingRequest.from_event({"continuation": continuation})
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, SyncError)
    assert not caught.value.transient


# --- the plan --------------------------------------------------------------------------------------------------


def reconciled(days_ago: float) -> ListingCursor:
    return ListingCursor(high_water_mark=MARK, last_full_reconcile_at=NOW - timedelta(days=days_ago))


def test_no_mark_or_no_reconcile_yet_means_full() -> None:
    assert ListingCursor().plan(NOW, 7) == ListingPlan(ListingMode.FULL)
    assert ListingCursor(high_water_mark=MARK).plan(NOW, 7).mode is ListingMode.FULL
    assert ListingCursor(last_full_reconcile_at=NOW).plan(NOW, 7).mode is ListingMode.FULL


def test_a_recent_reconcile_means_incremental_from_the_mark() -> None:
    plan = reconciled(3).plan(NOW, 7)
    assert plan == ListingPlan(ListingMode.INCREMENTAL, MARK)
    assert plan.incremental


def test_forced_or_disabled_means_full() -> None:
    assert reconciled(1).plan(NOW, 7, force_full=True).mode is ListingMode.FULL
    assert reconciled(1).plan(NOW, 0).mode is ListingMode.FULL


def test_the_reconcile_is_due_half_a_day_early_not_a_night_late() -> None:
    slack_days = RECONCILE_SLACK / timedelta(days=1)
    assert reconciled(7 - slack_days).plan(NOW, 7).mode is ListingMode.FULL
    assert reconciled(7 - slack_days - 0.01).plan(NOW, 7).mode is ListingMode.INCREMENTAL


def test_a_new_night_starts_progress_from_the_plan() -> None:
    progress = reconciled(1).progress_for(ListingRequest(), now=NOW, reconcile_days=7)
    assert progress.mode is ListingMode.INCREMENTAL
    assert progress.newer_than == "2025-03-07T23:59:30.123Z"
    assert progress.started_at == "2025-03-08T02:00:00.000Z"
    assert progress.run_id.startswith("20250308T020000Z-")
    assert not progress.run_created
    assert progress.moves_cursor


def test_a_continuation_carries_on_the_progress_the_cursor_holds() -> None:
    held = ListingProgress(run_id="run-1", mode=ListingMode.INCREMENTAL, newer_than="2025-03-01T00:00:00.000Z")
    cursor = reconciled(1).continuing(held)
    assert cursor.high_water_mark == MARK
    request = ListingRequest(run_id="run-1", correlation_id="c", page=2)
    assert cursor.progress_for(request, now=NOW, reconcile_days=7) is held


def test_a_continuation_the_cursor_does_not_know_is_full_and_moves_nothing() -> None:
    request = ListingRequest(run_id="run-2", correlation_id="c", page=2)
    progress = reconciled(1).progress_for(request, now=NOW, reconcile_days=7)
    assert progress == ListingProgress(run_id="run-2", mode=ListingMode.FULL, run_created=True, moves_cursor=False)
    assert progress.plan() == ListingPlan(ListingMode.FULL)


# --- the cursor at the end of a night -------------------------------------------------------------------------


def done(mode: ListingMode = ListingMode.INCREMENTAL, **fields: Any) -> ListingProgress:
    return ListingProgress(run_id="run-1", mode=mode, started_at="2025-03-08T02:00:00.000Z", **fields)


def test_the_mark_moves_to_the_newest_medium_seen_never_back() -> None:
    cursor = reconciled(1)
    newer = cursor.finished(done(newest="2025-03-08T01:00:00Z"), now=NOW, hold_window=WEEK)
    assert newer.high_water_mark == datetime(2025, 3, 8, 1, 0, tzinfo=UTC)
    assert newer.last_full_reconcile_at == cursor.last_full_reconcile_at  # incremental: not a reconcile
    older = cursor.finished(done(newest="2025-01-01T00:00:00Z"), now=NOW, hold_window=WEEK)
    assert older.high_water_mark == MARK


def test_a_full_listing_records_when_it_started_as_the_reconcile() -> None:
    moved = reconciled(8).finished(done(ListingMode.FULL), now=NOW, hold_window=WEEK)
    assert moved.last_full_reconcile_at == NOW
    assert moved.in_progress is None


def test_send_failures_or_an_orphan_continuation_move_nothing() -> None:
    cursor = reconciled(1).continuing(done())
    for progress in (done(newest="2025-03-08T01:00:00Z", send_failures=1), ListingProgress.orphan("run-9")):
        moved = cursor.finished(progress, now=NOW, hold_window=WEEK)
        # The marks stay; only the run is remembered for the budget's pace (a run record exists).
        recent = (progress.run_id,) if progress.run_created else ()
        assert moved == ListingCursor(cursor.high_water_mark, cursor.last_full_reconcile_at, recent_runs=recent)


def test_a_medium_still_processing_holds_the_mark_just_below_itself_within_the_window() -> None:
    hold = "2025-03-08T00:30:00Z"
    moved = ListingCursor().finished(done(newest="2025-03-08T01:00:00Z", hold=hold), now=NOW, hold_window=WEEK)
    assert moved.high_water_mark == datetime(2025, 3, 8, 0, 30, tzinfo=UTC) - timedelta(microseconds=1)
    # The microsecond below survives the round trip through the stored cursor.
    assert ListingCursor.from_json(moved.as_json()).high_water_mark == moved.high_water_mark


def test_a_medium_stuck_processing_longer_than_the_window_holds_nothing() -> None:
    progress = done(newest="2025-03-08T01:00:00Z", hold="2025-02-01T00:00:00Z")
    moved = ListingCursor().finished(progress, now=NOW, hold_window=WEEK)
    assert moved.high_water_mark == datetime(2025, 3, 8, 1, 0, tzinfo=UTC)


# --- stored forms ----------------------------------------------------------------------------------------------


def test_the_cursor_and_its_progress_round_trip() -> None:
    progress = done(newest="2025-03-08T01:00:00Z", hold="2025-03-08T00:30:00Z", run_created=True, send_failures=2)
    cursor = reconciled(1).continuing(progress)
    document = cursor.as_json()
    assert document["in_progress"]["mode"] == "incremental"
    assert ListingCursor.from_json(document) == cursor
    assert "in_progress" not in reconciled(1).as_json()


def test_unreadable_stored_values_are_ignored() -> None:
    stored = {"high_water_mark": "yesterday", "last_full_reconcile_at": 5, "in_progress": 1}
    cursor = ListingCursor.from_json(stored)
    assert cursor == ListingCursor()
    assert ListingCursor.from_json(None) == ListingCursor()
    assert ListingProgress.from_json({"mode": "full"}) is None
    odd = ListingProgress.from_json({"run_id": "r", "mode": "sideways", "newest": 3, "moves_cursor": 0})
    assert odd == ListingProgress(run_id="r", mode=ListingMode.FULL, moves_cursor=True)


# --- progress and outcomes -------------------------------------------------------------------------------------


def test_progress_absorbs_each_invocation() -> None:
    progress = done(newest="2025-03-08T01:00:00Z", hold="2025-03-08T00:30:00Z", send_failures=1)
    outcome = ListingOutcome(
        run_id="run-1",
        send_failures=["a", "b"],
        newest_created_at=datetime(2025, 3, 8, 1, 30, tzinfo=UTC),
        hold_created_at=datetime(2025, 3, 8, 0, 45, tzinfo=UTC),
    )
    progress.absorb(outcome)
    assert (progress.newest, progress.hold, progress.send_failures) == (
        "2025-03-08T01:30:00Z",
        "2025-03-08T00:30:00Z",
        3,
    )


def test_an_outcome_folds_pages_in_and_answers_json() -> None:
    total = ListingOutcome(run_id="run-1", mode=ListingMode.INCREMENTAL)
    first = ListingOutcome(run_id="run-1", listed=3, enqueued=2, already_archived=1)
    first.saw(datetime(2025, 3, 1, tzinfo=UTC), held=False)
    first.saw(datetime(2025, 3, 2, tzinfo=UTC), held=True)
    skipped = Counter({SkipReason.NOT_READY: 2})
    second = ListingOutcome(run_id="run-1", listed=2, skipped=skipped, send_failures=["x"])
    second.saw(datetime(2025, 3, 3, tzinfo=UTC), held=False)
    second.saw(datetime(2025, 3, 1, 12, tzinfo=UTC), held=True)
    total.add(first)
    total.add(second)
    total.next_page = 4
    assert total.newest_created_at == datetime(2025, 3, 3, tzinfo=UTC)
    assert total.hold_created_at == datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert not total.done
    assert total.as_json() == {
        "run_id": "run-1",
        "mode": "incremental",
        "listed": 5,
        "enqueued": 2,
        "already_archived": 1,
        "skipped": {"not_ready": 2},
        "send_failures": ["x"],
        "next_page": 4,
        "done": False,
    }


def test_run_counts_are_taken_once() -> None:
    counts = RunCounts()
    assert not counts
    page = ListingOutcome(
        run_id="r", listed=4, enqueued=1, already_archived=1, skipped=Counter({SkipReason.NOT_A_VIDEO: 2})
    )
    counts.add(page)
    assert counts
    assert counts.take() == {"listed": 4, "enqueued": 1, "skipped": 2, "already_archived": 1}
    assert not counts
    assert counts.take() == {"listed": 0, "enqueued": 0, "skipped": 0, "already_archived": 0}
