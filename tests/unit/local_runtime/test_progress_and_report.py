"""The demo's progress and last screen, without servers: what a terminal and a pipe get, and counts that add up."""

from __future__ import annotations

import io
from typing import Any

from devtools.local_runtime.pipeline import ConsumerStats, RunResult
from devtools.local_runtime.progress import Progress, Snapshot, format_duration
from devtools.local_runtime.report import DemoReport, FailedVideo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _progress(snapshots: list[Snapshot], *, bar: bool, clock: Clock) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    state = {"i": 0}

    def read() -> Snapshot:
        return snapshots[min(state["i"], len(snapshots) - 1)]

    progress = Progress(read, total_videos=4, total_bytes=None, stream=stream, bar=bar, clock=clock)
    progress.advance = lambda: state.__setitem__("i", state["i"] + 1)  # type: ignore[attr-defined]
    return progress, stream


def test_piped_lines_are_throttled_but_the_final_state_is_always_printed() -> None:
    clock = Clock()
    snapshots = [Snapshot(0, 0, 0), Snapshot(1, 0, 1_000_000), Snapshot(4, 0, 4_000_000)]
    progress, stream = _progress(snapshots, bar=False, clock=clock)
    progress()  # printed: the first line
    clock.now += 1.0
    progress.advance()  # type: ignore[attr-defined]
    progress()  # within the interval: not printed
    clock.now += 1.0
    progress.advance()  # type: ignore[attr-defined]
    progress.finish()  # the run ended before the next interval: its final state still printed
    lines = stream.getvalue().splitlines()
    assert lines == [
        "progress: 0/4 videos, 0.0 MB, 0.0 MB/s, time left unknown",
        "progress (final): 4/4 videos, 4.0 MB, 2.0 MB/s, done in 0:02",
    ]
    assert "\r" not in stream.getvalue()


def test_on_a_terminal_one_bar_rewritten_in_place_then_a_newline() -> None:
    clock = Clock()
    snapshots = [Snapshot(1, 0, 1_000_000), Snapshot(2, 1, 2_000_000)]
    progress, stream = _progress(snapshots, bar=True, clock=clock)
    clock.now += 2.0
    progress()
    clock.now += 2.0
    progress.advance()  # type: ignore[attr-defined]
    progress.finish()
    text = stream.getvalue()
    assert text.count("\r") >= 2
    assert text.endswith("\n")
    assert text.count("\n") == 1
    last = text.rsplit("\r", 1)[1].strip()
    assert last.startswith("[##########..........] 2/4 videos  2.0 MB  0.5 MB/s  0:04 left  1 failed")


def test_time_left_goes_by_bytes_when_the_total_is_known() -> None:
    progress = Progress(lambda: None, total_videos=10, total_bytes=100, stream=io.StringIO(), bar=False)
    assert progress.render(Snapshot(1, 0, 25), elapsed=10.0).endswith("0:30 left")
    assert format_duration(3725) == "1:02:05"


def _result(statuses: dict[str, int], *, enqueued: int = 4, dlq: int = 0, **listing: Any) -> RunResult:
    return RunResult(
        run_id="r",
        listing={"listed": 6, "enqueued": enqueued, "already_archived": 0, **listing},
        report=None,
        report_text=None,
        statuses={"PENDING": 0, "IN_PROGRESS": 0, "COMPLETED": 0, "FAILED": 0, **statuses},
        dlq_depth=dlq,
        drained=True,
        consumer_stats=ConsumerStats(),
    )


def test_a_clean_run_adds_up_and_exits_0() -> None:
    report = DemoReport(
        result=_result({"COMPLETED": 4}),
        elapsed_seconds=7,
        archived=3,
        bytes_archived=3_000_000,
        deleted_at_source=1,
    )
    lines = report.lines()
    assert lines[1] == "OK in 0:07: every queued video was archived"
    assert "  queued     4 = 3 archived + 1 deleted at the source + 0 failed + 0 unfinished" in lines
    assert not any("note" in line for line in lines)
    assert report.exit_code == 0


def test_a_failed_video_is_named_and_the_exit_code_is_1() -> None:
    report = DemoReport(
        result=_result({"COMPLETED": 3, "FAILED": 1}, dlq=1),
        elapsed_seconds=7,
        archived=3,
        failures=[FailedVideo("GX010001.MP4", "abc", "SizeMismatch: short body")],
    )
    lines = report.lines()
    assert lines[1] == "NOT OK after 0:07: 1 of 4 queued videos were not archived"
    assert "  failed     GX010001.MP4 (abc): SizeMismatch: short body" in lines
    assert "  DLQ        1 message(s) in the dead-letter queue" in lines
    assert '  next       what to do about them: docs/runbook.md, "Failed media"' in lines
    assert report.exit_code == 1


def test_counts_that_do_not_add_up_are_said_so() -> None:
    report = DemoReport(result=_result({"COMPLETED": 4}), elapsed_seconds=1, archived=2)
    assert "  note       those add up to 2, not 4: the state is inconsistent" in report.lines()
    # The exit code goes by the media's statuses (all COMPLETED here); the note is what flags the disagreement.
    assert report.exit_code == 0


def test_a_failed_listing_says_so_and_exits_1() -> None:
    report = DemoReport(result=_result({}, error="AuthError: refused"), elapsed_seconds=1)
    assert report.lines()[1] == "FAILED after 0:01: the listing failed (AuthError: refused)"
    assert report.exit_code == 1
