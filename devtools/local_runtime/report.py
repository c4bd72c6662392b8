"""The demo's last screen: one verdict and a few lines a person reads in ten seconds, whose counts add up.

Why its own text and not the SNS report's: the published report is written for a nightly e-mail (and is printed
whole into the log file); the demo ends with what a newcomer asks: did it work, what happened to each queued
video, and where to look next. Each queued video is counted exactly once (archived, deleted at the source,
failed or unfinished), so the line adds up to the queued number; a run where it does not says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.local_runtime.pipeline import RunResult
from devtools.local_runtime.progress import format_duration
from pipeline.services.report_text import runbook
from pipeline.state import MediaStatus

MAX_FAILURES_SHOWN = 10


@dataclass(frozen=True)
class FailedVideo:
    filename: str
    media_id: str
    error: str


@dataclass(frozen=True)
class DemoReport:
    """Everything the last screen says, gathered while the local stack is still up."""

    result: RunResult
    elapsed_seconds: float
    archived: int = 0
    bytes_archived: int = 0
    deleted_at_source: int = 0
    retried: int = 0
    skipped: int = 0
    subject: str | None = None
    failures: list[FailedVideo] = field(default_factory=list)
    log_file: Path | None = None

    @property
    def queued(self) -> int:
        return int(self.result.listing.get("enqueued", 0))

    @property
    def failed(self) -> int:
        return self.result.statuses.get(MediaStatus.FAILED.value, 0)

    @property
    def unfinished(self) -> int:
        statuses = self.result.statuses
        return statuses.get(MediaStatus.PENDING.value, 0) + statuses.get(MediaStatus.IN_PROGRESS.value, 0)

    @property
    def exit_code(self) -> int:
        """0 when every queued video was archived (or is gone at the source) and nothing is left over, else 1."""
        return 0 if self.result.ok else 1

    def verdict(self) -> str:
        took = format_duration(self.elapsed_seconds)
        if self.result.listing.get("error"):
            return f"FAILED after {took}: the listing failed ({self.result.listing['error']})"
        if not self.result.drained:
            return f"NOT FINISHED after {took}: the queue did not drain in time"
        if self.result.ok:
            return f"OK in {took}: every queued video was archived"
        left = self.queued - self.archived - self.deleted_at_source
        return f"NOT OK after {took}: {left} of {self.queued} queued videos were not archived"

    def lines(self) -> list[str]:
        listing = self.result.listing
        lines = ["", self.verdict()]
        if not listing.get("error"):
            lines.append(
                f"  listed     {listing.get('listed', 0)} media: {self.queued} new videos queued, "
                f"{listing.get('already_archived', 0)} already archived, "
                f"{self.skipped} skipped (not videos or not ready)"
            )
            retried = ""
            if self.retried:
                retried = f"; {self.retried} {'delivery' if self.retried == 1 else 'deliveries'} retried"
            lines.append(f"  archived   {self.archived} videos, {self.bytes_archived / 1e6:.1f} MB{retried}")
            lines.append(
                f"  queued     {self.queued} = {self.archived} archived + {self.deleted_at_source} deleted at the "
                f"source + {self.failed} failed + {self.unfinished} unfinished"
            )
            total = self.archived + self.deleted_at_source + self.failed + self.unfinished
            if total != self.queued:
                lines.append(f"  note       those add up to {total}, not {self.queued}: the state is inconsistent")
        if self.result.dlq_depth:
            lines.append(f"  DLQ        {self.result.dlq_depth} message(s) in the dead-letter queue")
        for failure in self.failures[:MAX_FAILURES_SHOWN]:
            lines.append(f"  failed     {failure.filename} ({failure.media_id}): {failure.error}")
        if len(self.failures) > MAX_FAILURES_SHOWN:
            lines.append(f"  failed     ... and {len(self.failures) - MAX_FAILURES_SHOWN} more (see the log)")
        if self.failures or self.result.dlq_depth:
            lines.append(f"  next       what to do about them: {runbook('Failed media')}")
        if self.subject:
            lines.append(f'  report     published to SNS: "{self.subject}"')
        if self.log_file is not None:
            lines.append(f"  logs       {self.log_file} (the full report is at its end; -v shows logs here)")
        return lines


def gather(pipeline: Any, result: RunResult, *, elapsed_seconds: float, log_file: Path | None) -> DemoReport:
    """Reads the run record and the failed media of the run from the (still running) local stack."""
    app = pipeline.app
    run = app.state.runs.get(result.run_id) if app is not None and result.run_id else None
    failures: list[FailedVideo] = []
    if app is not None and result.run_id and result.statuses.get(MediaStatus.FAILED.value):
        for record in app.state.media.list_by_status(MediaStatus.FAILED, run_id=result.run_id):
            failures.append(
                FailedVideo(
                    filename=record.filename or "?",
                    media_id=record.media_id,
                    error=" ".join((record.last_error or "no error recorded").split())[:120],
                )
            )
    subject = None
    if result.report_text:
        subject = result.report_text.split("\n", 1)[0]
    return DemoReport(
        result=result,
        elapsed_seconds=elapsed_seconds,
        archived=run.synced if run else 0,
        bytes_archived=run.bytes_transferred if run else 0,
        deleted_at_source=run.source_deleted if run else 0,
        retried=run.retried if run else 0,
        skipped=int((result.report or {}).get("skipped", run.skipped if run else 0)),
        subject=subject,
        failures=failures,
        log_file=log_file,
    )
