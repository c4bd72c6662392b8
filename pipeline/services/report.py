"""The run report as a value: its figures, its verdict, its subject, the text a person reads, the JSON behind it.

Why apart from the service (`summary.py`, which finds the runs, claims and publishes): what the report says is
pure (figures in, text out), so every outcome, every line and the arithmetic are tested without a table or SNS.

What the figures mean, so that they add up: every medium the run queued ends in exactly one of archived tonight
(by this run's workers), archived by another run (a delivery found it COMPLETED, or it was held by another run's
worker and is COMPLETED now), deleted at the source, failed (here or in another run), or not finished; `queued`
is their sum (a test checks it). Deliveries outside that sum (SQS delivering this run's message twice, unreadable
messages, retries) are reported beside it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.services.report_text import (
    PINNING_DOC,
    backlog_lines,
    duration,
    listing_lines,
    runbook,
    size,
    when,
)

SUBJECT_LIMIT = 100  # SNS refuses longer subjects


class Outcome(StrEnum):
    OK = "OK"  # everything queued is archived (or confirmed deleted), nothing failed or left, a complete walk
    PARTIAL = (
        "PARTIAL"  # some archived, some failed or not finished (or the DLQ holds messages, or the walk was cut)
    )
    FAILED = "FAILED"  # the run queued media and none was archived
    CRITICAL = "CRITICAL"  # the listing failed: nothing was queued


@dataclass
class FailedMedia:
    media_id: str
    error: str
    attempts: int | None
    filename: str | None = None


@dataclass
class RunReport:
    run_id: str
    environment: str
    provider: str
    outcome: Outcome
    started_at: str
    reported_at: str
    duration_seconds: float
    # The listing: what it saw tonight and what the library holds.
    mode: str | None  # "full" or "incremental" (None: not noted)
    library_size: int | None  # media in the cloud library as last fully listed
    library_listed_at: str | None
    listed: int  # media listed tonight
    skipped: int
    already_archived: int  # listed tonight and archived on an earlier night
    # Listed tonight, wanted, and neither queued as new nor archived: waiting for a later night (the budget), or
    # queued by an earlier night whose message is still live.
    not_queued: int
    enqueued: int  # queued tonight, new and from the backlog
    queued_from_backlog: int
    waiting: int | None  # the backlog left for later nights
    waiting_bytes: int | None
    backlog_ends_at: str | None
    # What became of what was queued (these add up to `enqueued`).
    synced: int
    archived_elsewhere: int  # archived by another run (found COMPLETED, or held by its worker and COMPLETED now)
    source_deleted: int
    failed: int  # failed in this run, and failed in another run's worker
    unfinished: int
    bytes_transferred: int
    transfer_seconds: float
    throughput_mbps: float | None
    # Deliveries beside the arithmetic.
    retried: int
    redelivered: int
    poison: int
    duplicates: int  # deliveries that found their medium COMPLETED by another run
    leased_elsewhere: int  # deliveries that found another run's worker holding their medium
    overcounted: int  # outcomes counted beyond what was queued (a redrive of an earlier failure): 0 normally
    dlq_depth: int | None
    lister_error: str | None
    # The whole archive so far.
    total_archived: int | None
    total_archived_bytes: int | None
    failures: list[FailedMedia] = field(default_factory=list)
    # The hosts the run's download links pointed to, and those of them ALLOWED_DOWNLOAD_HOSTS refuses (None: no
    # list pinned): what an operator pins, and the sign that the provider moved its content elsewhere.
    content_hosts: list[str] = field(default_factory=list)
    hosts_not_allowed: list[str] | None = None
    # What the listing noted (pipeline.services.listing_notes and the backlog helper), as stored.
    listing: dict[str, Any] = field(default_factory=dict)

    @property
    def archived(self) -> int:
        """Queued media now in the archive, whoever archived them."""
        return self.synced + self.archived_elsewhere

    def subject(self) -> str:
        head = f"[gopro-sync {self.environment}] {self.outcome.value}: "
        if self.outcome is Outcome.CRITICAL:
            text = head + f"the listing failed ({(self.lister_error or '').split(':')[0]})"
            return text[:SUBJECT_LIMIT]
        parts = [f"{self.synced} archived ({size(self.bytes_transferred)})"]
        if self.archived_elsewhere:
            parts.append(f"{self.archived_elsewhere} by another run")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.unfinished:
            parts.append(f"{self.unfinished} not finished")
        if self.dlq_depth:
            parts.append(f"{self.dlq_depth} in the DLQ")
        if self.listing.get("incomplete"):
            parts.append("listing incomplete")
        elif self.lister_error:
            parts.append("listing failed")
        return (head + ", ".join(parts))[:SUBJECT_LIMIT]

    def body(self) -> str:
        lines = [self.subject(), ""]
        if self.outcome is Outcome.CRITICAL:
            lines += [
                "The nightly listing failed, so nothing new was queued for archiving:",
                f"  {self.lister_error}",
                f"See {runbook('gopro-sync-lister-failed')} (and {runbook('gopro-sync-authentication-failures')}"
                " if GoPro refused the credentials).",
                "",
            ]
        lines += self._listing_lines()
        if self.outcome is not Outcome.CRITICAL or self.enqueued:
            lines += self._queued_lines()
        lines += self._total_lines()
        lines += self._content_host_lines()
        lines += listing_lines(self.listing)
        if self.failures:
            lines += ["", f"Failed media ({runbook('Failed media')}):"]
            lines += [f"  {f.filename or '?'} ({f.media_id}): {f.error}" for f in self.failures]
            if self.failed > len(self.failures):
                more = self.failed - len(self.failures)
                lines.append(f"  … and {more} more (failed in another run's worker, or past the list)")
        lines += ["", "--- JSON ---", json.dumps(self.as_json(), sort_keys=True)]
        return "\n".join(lines)

    def _listing_lines(self) -> list[str]:
        night = {"full": "a full listing (every medium)", "incremental": "an incremental night (only what is new)"}
        kind = f": {night[self.mode]}" if self.mode in night else ""
        lines = [
            f"Run {self.run_id} ({self.provider}){kind}, started {when(self.started_at)},"
            f" took {duration(self.duration_seconds)}."
        ]
        if self.library_size is not None:
            at = f", as last fully listed {when(self.library_listed_at)}" if self.library_listed_at else ""
            lines.append(f"  cloud library:            {self.library_size:,} media{at}")
        new = self.enqueued - self.queued_from_backlog
        lines += [
            f"  listed tonight:           {self.listed}",
            f"    new, queued tonight:    {new}",
            f"    already archived:       {self.already_archived}",
            f"    skipped:                {self.skipped}",
        ]
        if self.not_queued:
            lines.append(
                f"    not queued tonight:     {self.not_queued} (waiting for a later night, or queued already)"
            )
        if self.queued_from_backlog:
            lines.append(f"  queued from the backlog:  {self.queued_from_backlog}")
        lines += backlog_lines(self.listing)
        return lines

    def _queued_lines(self) -> list[str]:
        rate = f", {self.throughput_mbps:.1f} Mbit/s per download" if self.throughput_mbps else ""
        lines = [
            "",
            f"What became of the {self.enqueued} queued tonight:",
            f"  archived tonight:         {self.synced} ({size(self.bytes_transferred)}{rate})",
        ]
        if self.archived_elsewhere:
            lines.append(f"  archived by another run:  {self.archived_elsewhere} (an overlapping night had them)")
        lines += [
            f"  deleted at the source:    {self.source_deleted}",
            f"  failed:                   {self.failed}",
            f"  not finished:             {self.unfinished}"
            + (
                f" (still queued, being retried or held by a worker: {runbook('Not finished')})"
                if self.unfinished
                else ""
            ),
        ]
        if self.overcounted:
            lines.append(
                f"  note: {self.overcounted} outcome(s) more than queued were counted (a redrive of an earlier"
                " failure); 'not finished' is 0"
            )
        if self.retried:
            lines.append(f"  retried after a failure:  {self.retried} (SQS redelivered them)")
        if self.redelivered:
            lines.append(f"  delivered twice by SQS:   {self.redelivered} (counted once)")
        if self.poison:
            lines.append(f"  unreadable messages:      {self.poison} (sent to the dead-letter queue)")
        if self.dlq_depth:
            lines.append(
                f"  dead-letter queue:        {self.dlq_depth} message(s): {runbook('gopro-sync-dlq-not-empty')}"
            )
        return lines

    def _total_lines(self) -> list[str]:
        if self.total_archived is None:
            return []
        return [
            "",
            f"Archived so far: {self.total_archived:,} media, {size(self.total_archived_bytes or 0)}"
            f" (every archived medium of {self.provider}).",
        ]

    def _content_host_lines(self) -> list[str]:
        if not self.content_hosts:
            return []
        lines = [f"  download hosts:           {', '.join(self.content_hosts)}"]
        if self.hosts_not_allowed is None:
            lines.append(f"    (pin them in ALLOWED_DOWNLOAD_HOSTS: {PINNING_DOC})")
        elif self.hosts_not_allowed:
            refused = ", ".join(self.hosts_not_allowed)
            lines.append(f"    not in ALLOWED_DOWNLOAD_HOSTS, so refused: {refused} ({PINNING_DOC})")
        return lines

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["outcome"] = self.outcome.value
        document["archived"] = self.archived
        return document


def outcome_of(
    *,
    enqueued: int,
    archived: int,
    failed: int,
    unfinished: int,
    dlq_depth: int | None,
    lister_error: str | None,
    incomplete: bool,
) -> Outcome:
    """The verdict: OK only when nothing is failed, unfinished, dead-lettered, cut short or in error."""
    if lister_error and enqueued == 0:
        return Outcome.CRITICAL
    if enqueued and not archived and (failed or unfinished):
        return Outcome.FAILED
    if failed or unfinished or dlq_depth or lister_error or incomplete:
        return Outcome.PARTIAL
    return Outcome.OK
