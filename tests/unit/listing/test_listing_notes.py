"""What the listing notes for the report, and the walk check that decides whether the cursor may move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.services.listing_models import ListingCursor, ListingMode, ListingProgress
from pipeline.services.listing_notes import MAX_NOTED_UNREADABLE, ListingNotes
from pipeline.services.report_text import listing_lines

NOW = datetime(2025, 3, 8, 2, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def progress(notes: ListingNotes, mode: ListingMode = ListingMode.FULL) -> ListingProgress:
    started, newest = "2025-03-08T02:00:00.000Z", "2025-03-08T01:00:00Z"
    return ListingProgress(run_id="run-1", mode=mode, started_at=started, newest=newest, notes=notes)


def test_a_walk_is_incomplete_with_a_short_page_or_fewer_media_than_the_service_counts() -> None:
    assert ListingNotes(seen=212, total_items=212, checked=True).incomplete is None
    assert ListingNotes(seen=215, total_items=212, checked=True).incomplete is None  # repeats were deduped
    assert ListingNotes(seen=200, total_items=212, checked=True).incomplete == (
        "saw 200 of the 212 media the service counts"
    )
    assert ListingNotes(seen=5, total_items=None, checked=False).incomplete is None  # nothing to compare with
    both = ListingNotes(seen=200, total_items=212, checked=True, short_pages=[2, 3]).incomplete
    assert both == "page(s) 2, 3 stayed short; saw 200 of the 212 media the service counts"


def test_an_incomplete_walk_moves_no_mark_and_is_no_reconcile() -> None:
    cursor = ListingCursor(high_water_mark=NOW - WEEK, last_full_reconcile_at=NOW - 2 * WEEK)
    incomplete = ListingNotes(seen=1, total_items=2, checked=True)
    assert cursor.finished(progress(incomplete), now=NOW, hold_window=WEEK) == cursor
    whole = ListingNotes(seen=2, total_items=2, checked=True)
    complete = cursor.finished(progress(whole), now=NOW, hold_window=WEEK)
    assert complete.high_water_mark == datetime(2025, 3, 8, 1, 0, tzinfo=UTC)
    assert complete.last_full_reconcile_at == NOW


def test_the_mark_never_passes_the_night() -> None:
    later = ListingProgress(run_id="r", mode=ListingMode.FULL, newest="2025-04-01T00:00:00Z", started_at="x")
    assert ListingCursor().finished(later, now=NOW, hold_window=WEEK).high_water_mark == NOW


def test_notes_survive_the_cursor_round_trip_of_a_continued_listing() -> None:
    notes = ListingNotes(seen=7, total_items=9, checked=True, short_pages=[2], boundary_ids=["a", "b"])
    notes.unknown_types["Hologram"] += 1
    notes.not_ready["live"] += 2
    notes.note_unreadable("x" * 24, "file_size -1 is impossible")
    back = ListingProgress.from_json(progress(notes).as_json())
    assert back is not None
    assert back.notes == notes


def test_unreadable_media_are_named_up_to_a_bound_and_counted_beyond() -> None:
    notes = ListingNotes()
    for index in range(MAX_NOTED_UNREADABLE + 5):
        notes.note_unreadable(f"id{index}", "bad")
    assert len(notes.unreadable) == MAX_NOTED_UNREADABLE
    assert notes.unreadable_count == MAX_NOTED_UNREADABLE + 5
    lines = listing_lines(notes.report_json())
    assert "  unreadable, skipped:      25 (impossible values in the listing)" in lines
    assert "    … and 5 more (see the lister's log)" in lines


def test_a_quiet_listing_has_no_report_lines() -> None:
    assert listing_lines(ListingNotes(seen=3, total_items=3, checked=True).report_json()) == []
    assert listing_lines({}) == []
