"""What a report says: a subject that never says OK while anything is left, counts that add up, every run its
own report, the listing's and the backlog's notes, the archive's total, and runbook sections that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.services.report import Outcome, RunReport
from pipeline.services.report_text import PINNING_DOC, RUNBOOK_SECTIONS, runbook
from pipeline.state import NOTE_SOURCE_DELETED
from tests.unit.services.fakes import Rig

REPO = Path(__file__).resolve().parents[3]
RUN_A = "20260301T020000Z-aaaaaaaa"
RUN_B = "20260302T020000Z-bbbbbbbb"


def night(
    rig: Rig, run_id: str = RUN_A, *, done: bool = True, notes: dict[str, Any] | None = None, **counters: Any
) -> None:
    rig.state.runs.create(run_id, correlation_id="c", started_at=rig.clock(), provider="gopro")
    if counters:
        rig.state.runs.update(run_id, **counters)
    if done:
        rig.state.runs.finish_listing(run_id, notes=json.dumps(notes) if notes is not None else None)


def report(rig: Rig, run_id: str = RUN_A) -> RunReport:
    run = rig.state.runs.get(run_id)
    assert run is not None
    return rig.summary().build(run, now=rig.clock())


def archived(rig: Rig, media_id: str, size: int, *, run_id: str = "older-run", provider: str = "gopro") -> None:
    assert rig.state.media.claim(provider, media_id, owner="w", run_id=run_id, lease_seconds=60)
    rig.state.media.complete(provider, media_id, owner="w", s3_key="k", size=size, checksum=None, duration_s=1.0)


# --- the verdict -------------------------------------------------------------------------------------------------


def test_duplicates_of_archived_media_are_finished_so_the_run_is_ok() -> None:
    """Issue 12's case: an overlapping run's 142 messages found their videos archived by the other run."""
    rig = Rig()
    night(rig, listed=142, enqueued=142, duplicates=142)

    seen = report(rig)

    assert (seen.outcome, seen.unfinished, seen.archived_elsewhere) == (Outcome.OK, 0, 142)
    assert seen.subject() == "[gopro-sync dev] OK: 0 archived (0 B), 142 by another run"


def test_a_run_whose_queued_media_have_no_outcome_is_never_ok() -> None:
    rig = Rig()
    night(rig, "r-none", listed=142, enqueued=142)
    night(rig, "r-some", listed=10, enqueued=10, synced=7, bytes_transferred=7_000_000)

    none, some = report(rig, "r-none"), report(rig, "r-some")

    assert none.outcome is Outcome.FAILED
    assert none.subject() == "[gopro-sync dev] FAILED: 0 archived (0 B), 142 not finished"
    assert some.outcome is Outcome.PARTIAL
    assert some.subject() == "[gopro-sync dev] PARTIAL: 7 archived (7.0 MB), 3 not finished"
    assert "  not finished:             3 (still queued" in some.body()


def test_an_all_failed_run_is_failed_not_partial() -> None:
    rig = Rig()
    night(rig, listed=3, enqueued=3, failed=3)

    assert report(rig).subject() == "[gopro-sync dev] FAILED: 0 archived (0 B), 3 failed"


def test_subjects_per_outcome() -> None:
    rig = Rig()
    night(rig, "ok", listed=2, enqueued=2, synced=1, source_deleted=1, bytes_transferred=500_000_000_000)
    night(rig, "partial", listed=145, enqueued=145, synced=140, failed=2, bytes_transferred=500_000_000_000)
    night(rig, "critical", done=False)
    rig.state.runs.finish_listing("critical", lister_error="AuthError: token revoked")
    night(rig, "cut", listed=1, enqueued=1, synced=1, notes={"incomplete": "page 2 stayed short"})

    subjects = {run_id: report(rig, run_id).subject() for run_id in ("ok", "partial", "critical", "cut")}

    assert subjects == {
        "ok": "[gopro-sync dev] OK: 1 archived (500.0 GB)",
        "partial": "[gopro-sync dev] PARTIAL: 140 archived (500.0 GB), 2 failed, 3 not finished",
        "critical": "[gopro-sync dev] CRITICAL: the listing failed (AuthError)",
        "cut": "[gopro-sync dev] PARTIAL: 1 archived (0 B), listing incomplete",
    }


def test_a_medium_held_by_another_runs_worker_is_finished_only_when_its_record_is() -> None:
    rig = Rig()
    night(rig, RUN_B, listed=2, enqueued=2, synced=1)
    rig.state.runs.update(RUN_B, leased_elsewhere=1, leased_elsewhere_id="held0001")
    assert rig.state.media.claim("gopro", "held0001", owner="worker-a", run_id=RUN_A, lease_seconds=900)

    while_held = report(rig, RUN_B)
    rig.state.media.complete(
        "gopro", "held0001", owner="worker-a", s3_key="k", size=5, checksum=None, duration_s=1.0
    )
    once_done = report(rig, RUN_B)

    assert (while_held.outcome, while_held.unfinished) == (Outcome.PARTIAL, 1)
    assert (once_done.outcome, once_done.unfinished, once_done.archived_elsewhere) == (Outcome.OK, 0, 1)


def test_a_medium_held_elsewhere_that_failed_there_counts_as_failed() -> None:
    rig = Rig()
    night(rig, RUN_B, listed=1, enqueued=1)
    rig.state.runs.update(RUN_B, leased_elsewhere=1, leased_elsewhere_id="held0001")
    rig.state.media.claim("gopro", "held0001", owner="worker-a", run_id=RUN_A, lease_seconds=900)
    rig.state.media.fail("gopro", "held0001", owner="worker-a", error="SizeMismatch")

    seen = report(rig, RUN_B)

    assert (seen.outcome, seen.failed, seen.unfinished) == (Outcome.FAILED, 1, 0)


# --- the arithmetic ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "counters",
    [
        {
            "listed": 20,
            "enqueued": 12,
            "skipped": 3,
            "synced": 5,
            "duplicates": 2,
            "failed": 1,
            "source_deleted": 1,
        },
        {"listed": 9, "enqueued": 9, "synced": 9, "retried": 4, "redelivered": 3, "poison": 1},
        {"listed": 30, "enqueued": 0, "skipped": 30},
        {"listed": 50, "enqueued": 25, "skipped": 5, "synced": 2, "leased_elsewhere": 3},
    ],
)
def test_the_counts_add_up(counters: dict[str, int]) -> None:
    rig = Rig()
    backlog = {"waiting": 7, "waiting_bytes": 7_000, "queued_from_backlog": 4, "ends_at": "2026-03-09"}
    night(rig, notes={"mode": "incremental", "backlog": backlog}, **counters)

    seen = report(rig)

    outcomes = seen.synced + seen.archived_elsewhere + seen.source_deleted + seen.failed + seen.unfinished
    assert outcomes == seen.enqueued
    new = seen.enqueued - seen.queued_from_backlog
    listed = seen.already_archived + new + seen.skipped + seen.not_queued
    assert listed == seen.listed or seen.enqueued > seen.listed
    document = json.loads(seen.body().split("--- JSON ---\n", 1)[1])
    for name in ("enqueued", "synced", "archived_elsewhere", "source_deleted", "failed", "unfinished", "retried"):
        assert document[name] == getattr(seen, name)  # the JSON part keeps every figure


def test_outcomes_counted_twice_never_make_a_negative_unfinished() -> None:
    rig = Rig()
    night(rig, listed=2, enqueued=2, synced=2, failed=1)  # a redriven failure archived by the same run

    seen = report(rig)

    assert (seen.unfinished, seen.overcounted) == (0, 1)
    assert "1 outcome(s) more than queued" in seen.body()


# --- every run its own report ------------------------------------------------------------------------------------


def test_the_drain_reports_every_unreported_run_with_its_own_counters() -> None:
    rig = Rig()
    night(rig, RUN_A, listed=5, enqueued=5, synced=5)
    night(rig, RUN_B, listed=3, enqueued=3, synced=1, duplicates=2)

    reports = rig.summary().report_pending()
    again = rig.summary().report_pending()

    assert [(r.run_id, r.synced, r.archived_elsewhere, r.outcome) for r in reports] == [
        (RUN_A, 5, 0, Outcome.OK),
        (RUN_B, 1, 2, Outcome.OK),
    ]
    assert again == []
    assert len(rig.sns.published) == 2


def test_a_run_still_listing_waits_for_a_later_drain() -> None:
    rig = Rig()
    night(rig, RUN_A, listed=5, enqueued=5, synced=5)
    night(rig, RUN_B, done=False, listed=3, enqueued=3)

    first = rig.summary().report_pending()
    rig.state.runs.finish_listing(RUN_B)
    rig.state.runs.update(RUN_B, synced=3)
    later = rig.summary().report_pending()

    assert [r.run_id for r in first] == [RUN_A]
    assert [(r.run_id, r.synced) for r in later] == [(RUN_B, 3)]


def test_one_failed_publish_does_not_stop_the_other_runs_report() -> None:
    rig = Rig()
    night(rig, RUN_A, listed=1, enqueued=1, synced=1)
    night(rig, RUN_B, listed=1, enqueued=1, synced=1)
    calls: list[int] = []

    def fail_first() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("SNS is down")

    rig.sns.during_publish = fail_first
    with pytest.raises(RuntimeError):
        rig.summary().report_pending()
    rig.sns.during_publish = None
    retried = rig.summary().report_pending()

    assert [r.run_id for r in retried] == [RUN_A]  # B went out the first time; A on the retry
    assert {p["Subject"] for p in rig.sns.published} == {"[gopro-sync dev] OK: 1 archived (0 B)"}


def test_runs_older_than_the_queue_retention_are_left_out() -> None:
    from datetime import timedelta

    rig = Rig()
    night(rig, RUN_A, listed=1, enqueued=1, synced=1)
    rig.clock.advance(minutes=int(timedelta(days=16).total_seconds() // 60))
    night(rig, RUN_B, listed=1, enqueued=1, synced=1)

    assert [r.run_id for r in rig.summary().report_pending()] == [RUN_B]
    assert rig.state.runs.unreported("gopro", 10) == []


# --- what the body says ------------------------------------------------------------------------------------------


def test_the_body_renders_the_listing_and_backlog_notes() -> None:
    rig = Rig()
    notes = {
        "mode": "incremental",
        "library": {"size": 14210, "listed_at": "2026-02-22T02:00:00Z"},
        "backlog": {
            "waiting": 3000,
            "waiting_bytes": 12_000_000_000_000,
            "queued_from_backlog": 2,
            "nightly_budget_bytes": 500_000_000_000,
            "budget_source": "measured",
            "ends_at": "2026-03-20",
            "expired": 4,
        },
    }
    night(rig, notes=notes, listed=3, enqueued=3, synced=3)

    body = report(rig).body()

    assert "an incremental night (only what is new)" in body
    assert "  cloud library:            14,210 media, as last fully listed 2026-02-22 02:00 UTC" in body
    assert "  listed tonight:           3" in body
    assert "    new, queued tonight:    1" in body
    assert "  queued from the backlog:  2" in body
    assert "waiting for later nights: 3,000 (12.0 TB), should end about 2026-03-20" in body
    assert "a night queues about 500.0 GB, measured" in body
    assert "messages expired unprocessed, queued again: 4" in body


def test_without_notes_the_body_says_nothing_about_them() -> None:
    rig = Rig()
    night(rig, listed=3, enqueued=3, synced=3)

    body = report(rig).body()

    for absent in ("cloud library", "waiting", "full listing", "incremental", "backlog"):
        assert absent not in body.split("--- JSON ---")[0]
    assert "in the cloud library" not in body  # the old, wrong name for "listed tonight"


def test_a_full_night_says_so() -> None:
    rig = Rig()
    night(rig, notes={"mode": "full"}, listed=1, enqueued=1, synced=1)
    assert ": a full listing (every medium)," in report(rig).body()


def test_the_total_archived_counts_every_archived_medium_of_the_provider() -> None:
    rig = Rig()
    archived(rig, "old00001", 1_000_000)
    archived(rig, "old00002", 2_000_000)
    archived(rig, "other001", 9_000_000, provider="other")
    assert rig.state.media.claim("gopro", "gone0001", owner="w", run_id="r", lease_seconds=60)
    rig.state.media.complete(
        "gopro",
        "gone0001",
        owner="w",
        s3_key=None,
        size=None,
        checksum=None,
        duration_s=None,
        note=NOTE_SOURCE_DELETED,
    )
    night(rig, listed=2, enqueued=0, skipped=0)

    seen = report(rig)

    assert (seen.total_archived, seen.total_archived_bytes) == (2, 3_000_000)
    assert "Archived so far: 2 media, 3.0 MB (every archived medium of gopro)." in seen.body()


# --- runbook references ------------------------------------------------------------------------------------------


def _headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in path.read_text().splitlines() if re.match(r"#{1,6} ", line)]


def test_every_runbook_section_a_report_can_name_is_a_heading() -> None:
    headings = _headings(REPO / "docs" / "runbook.md")
    for section in RUNBOOK_SECTIONS:
        assert any(section in heading for heading in headings), f"docs/runbook.md has no heading {section!r}"
    pinning = PINNING_DOC.split('"')[1]
    assert any(pinning in heading for heading in _headings(REPO / "docs" / "operations.md"))
    with pytest.raises(ValueError, match="no runbook section"):
        runbook("Some section nobody wrote")


def test_every_runbook_reference_in_every_kind_of_report_resolves() -> None:
    rig = Rig()
    night(rig, "critical", done=False)
    rig.state.runs.finish_listing("critical", lister_error="AuthError: token revoked")
    busy = {"incomplete": "page 2 stayed short", "backlog": {"waiting": 5, "waiting_bytes": 5}}
    night(rig, "busy", notes=busy, listed=9, enqueued=9, synced=2, failed=1, retried=1, poison=1)
    from tests.unit.services.test_summary import failed_medium

    failed_medium(rig, "vid000003", "boom", run_id="busy")
    rig.sqs.dlq_depth = 2
    headings = _headings(REPO / "docs" / "runbook.md")

    bodies = [report(rig, run_id).body() for run_id in ("critical", "busy")]
    bodies.append("\n".join(_demo_report_with_a_failure().lines()))  # the demo's last screen names them too

    references = [ref for body in bodies for ref in re.findall(r'docs/runbook\.md, "([^"]+)"', body)]
    assert len(set(references)) >= 6
    for reference in references:
        assert any(reference in heading for heading in headings), reference


def _demo_report_with_a_failure() -> Any:
    from devtools.local_runtime.pipeline import ConsumerStats, RunResult
    from devtools.local_runtime.report import DemoReport, FailedVideo

    result = RunResult(
        run_id="r",
        listing={"listed": 2, "enqueued": 2, "already_archived": 0},
        report=None,
        report_text=None,
        statuses={"COMPLETED": 1, "FAILED": 1},
        dlq_depth=1,
        drained=True,
        consumer_stats=ConsumerStats(),
    )
    failure = FailedVideo("GX010001.MP4", "abc", "SizeMismatch")
    return DemoReport(result=result, elapsed_seconds=1, archived=1, failures=[failure])
