"""The run report: one SNS message per run that a person reads in ten seconds, with the JSON behind it.

Exactly once: the report is claimed with a conditional write on the run record before publishing, so a drain
alarm firing twice (or the lister and the alarm both asking) sends one message. A claim whose publisher died
goes stale and a later trigger may take it over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipeline.clock import iso_utc, parse_iso_utc, utc_now
from pipeline.config import Settings
from pipeline.observability import correlation
from pipeline.observability.metrics import MetricsEmitter
from pipeline.state import MediaStatus, RunRecord, StateStore
from pipeline.transfer.url_policy import host_allowed

log = logging.getLogger(__name__)

MAX_FAILURES_LISTED = 50
SUBJECT_LIMIT = 100  # SNS refuses longer subjects
PINNING_DOC = 'docs/operations.md, "Pinning the download hosts"'


@dataclass(frozen=True)
class SummaryRequest:
    """Whether to report, and on which run (None: the latest)."""

    wanted: bool
    run_id: str | None = None
    correlation_id: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> SummaryRequest:
        """From an alarm state-change event (wanted when it enters ALARM) or a direct `{"run_id": ...}`."""
        if not isinstance(event, Mapping):
            return cls(wanted=False)
        correlation_id = correlation.correlation_id_from_event(event)
        detail = event.get("detail")
        if isinstance(detail, Mapping) and isinstance(detail.get("state"), Mapping):
            return cls(wanted=detail["state"].get("value") == "ALARM", correlation_id=correlation_id)
        run_id = event.get("run_id")
        return cls(True, run_id if isinstance(run_id, str) and run_id else None, correlation_id)


class Outcome(StrEnum):
    OK = "OK"
    PARTIAL = "PARTIAL FAILURE"
    CRITICAL = "CRITICAL FAILURE"


@dataclass
class FailedMedia:
    media_id: str
    error: str
    attempts: int | None


@dataclass
class RunReport:
    run_id: str
    environment: str
    provider: str
    outcome: Outcome
    started_at: str
    reported_at: str
    listed: int
    enqueued: int
    already_archived: int
    skipped: int
    synced: int
    source_deleted: int
    failed: int
    retried: int
    unfinished: int
    bytes_transferred: int
    duration_seconds: float
    transfer_seconds: float
    throughput_mbps: float | None
    dlq_depth: int | None
    lister_error: str | None
    failures: list[FailedMedia] = field(default_factory=list)
    # The hosts the run's download links pointed to, and those of them ALLOWED_DOWNLOAD_HOSTS refuses (None: no
    # list pinned): what an operator pins, and the sign that the provider moved its content elsewhere.
    content_hosts: list[str] = field(default_factory=list)
    hosts_not_allowed: list[str] | None = None
    # What the listing noted (pipeline.services.listing_notes): skipped types, unreadable media, the walk check.
    listing: dict[str, Any] = field(default_factory=dict)

    def subject(self) -> str:
        head = f"[gopro-sync {self.environment}] {self.outcome.value}: "
        if self.outcome is Outcome.CRITICAL:
            text = head + f"the listing failed ({(self.lister_error or '').split(':')[0]})"
        else:
            text = head + f"{self.synced} archived ({_size(self.bytes_transferred)})"
            if self.failed:
                text += f", {self.failed} failed"
        return text[:SUBJECT_LIMIT]

    def body(self) -> str:
        lines = [self.subject(), ""]
        if self.outcome is Outcome.CRITICAL:
            lines += [
                "The nightly listing failed, so nothing new was queued for archiving:",
                f"  {self.lister_error}",
                'See docs/runbook.md ("Lister failed" / "Authentication failure").',
                "",
            ]
        lines += [
            f"Run {self.run_id} ({self.provider}), started {self.started_at},"
            f" took {_duration(self.duration_seconds)}.",
            f"  in the cloud library:   {self.listed}",
            f"  already archived:       {self.already_archived}",
            f"  skipped:                {self.skipped}",
            f"  queued tonight:         {self.enqueued}",
            f"  archived tonight:       {self.synced} ({_size(self.bytes_transferred)}"
            + (f", {self.throughput_mbps:.1f} Mbit/s per download)" if self.throughput_mbps else ")"),
            f"  deleted at the source:  {self.source_deleted}",
            f"  failed:                 {self.failed}",
        ]
        if self.retried:
            lines.append(f"  retried after a failure: {self.retried} (SQS redelivered them)")
        if self.unfinished:
            lines.append(f"  not finished yet:       {self.unfinished} (still queued or being retried)")
        if self.dlq_depth:
            lines.append(f"  dead-letter queue:      {self.dlq_depth} message(s) — see docs/runbook.md (DLQ)")
        lines += self._content_host_lines()
        lines += listing_lines(self.listing)
        if self.failures:
            lines += ["", "Failed media:"]
            lines += [f"  {f.media_id}: {f.error}" for f in self.failures]
        lines += ["", "--- JSON ---", json.dumps(self.as_json(), sort_keys=True)]
        return "\n".join(lines)

    def _content_host_lines(self) -> list[str]:
        if not self.content_hosts:
            return []
        lines = [f"  download hosts:         {', '.join(self.content_hosts)}"]
        if self.hosts_not_allowed is None:
            lines.append(f"    (pin them in ALLOWED_DOWNLOAD_HOSTS: {PINNING_DOC})")
        elif self.hosts_not_allowed:
            refused = ", ".join(self.hosts_not_allowed)
            lines.append(f"    not in ALLOWED_DOWNLOAD_HOSTS, so refused: {refused} ({PINNING_DOC})")
        return lines

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["outcome"] = self.outcome.value
        return document


class SummaryService:
    def __init__(
        self, *, settings: Settings, state: StateStore, sns: Any, sqs: Any, metrics: MetricsEmitter
    ) -> None:
        self._settings = settings
        self._state = state
        self._sns = sns
        self._sqs = sqs
        self._metrics = metrics

    def _find_run(self, run_id: str | None) -> RunRecord | None:
        if run_id:
            return self._state.runs.get(run_id)
        runs = self._state.runs.latest(1, provider=self._settings.provider)
        return runs[0] if runs else None

    def report(self, run_id: str | None = None, *, now: datetime | None = None) -> RunReport | None:
        """Publishes the report of `run_id` (default: the latest run) unless it is unfinished or already sent."""
        run = self._find_run(run_id)
        if run is None:
            log.warning("no run to report on (%s)", run_id or "latest")
            return None
        if not run.listing_done and not run.lister_error:
            log.info("run %s is still listing; its report waits for the next drain", run.run_id)
            return None
        if run.report_sent_at:
            log.info("run %s was already reported at %s", run.run_id, run.report_sent_at)
            return None
        if not self._state.runs.claim_report(run.run_id, now=now):
            return None
        try:
            report = self.build(run, now=now or utc_now())
            self._sns.publish(TopicArn=self._settings.topic_arn, Subject=report.subject(), Message=report.body())
        except Exception:
            # Hand the claim back: the invocation fails, and Lambda's retry must be able to send the report.
            self._state.runs.release_report_claim(run.run_id)
            raise
        self._state.runs.mark_report_sent(run.run_id, now=now)
        log.info("published the report of run %s: %s", run.run_id, report.outcome.value)
        return report

    def build(self, run: RunRecord, *, now: datetime) -> RunReport:
        failures = [
            FailedMedia(r.media_id, r.last_error or "unknown error", r.attempts)
            for r in self._state.media.list_by_status(MediaStatus.FAILED, MAX_FAILURES_LISTED, run_id=run.run_id)
        ]
        dlq_depth = self._dlq_depth()
        finished = run.synced + run.failed + run.source_deleted
        listing = _notes(run.listing_notes)
        if run.lister_error and run.enqueued == 0:
            outcome = Outcome.CRITICAL
        elif run.failed or dlq_depth or run.lister_error or listing.get("incomplete"):
            outcome = Outcome.PARTIAL
        else:
            outcome = Outcome.OK
        started = parse_iso_utc(run.started_at)
        throughput = (run.bytes_transferred * 8 / 1e6 / run.transfer_seconds) if run.transfer_seconds else None
        return RunReport(
            run_id=run.run_id,
            environment=self._settings.environment,
            provider=run.provider,
            outcome=outcome,
            started_at=run.started_at,
            reported_at=iso_utc(now, timespec="auto"),
            listed=run.listed,
            enqueued=run.enqueued,
            already_archived=max(0, run.listed - run.enqueued - run.skipped),
            skipped=run.skipped,
            synced=run.synced,
            source_deleted=run.source_deleted,
            failed=run.failed,
            retried=run.retried,
            unfinished=max(0, run.enqueued - finished),
            bytes_transferred=run.bytes_transferred,
            duration_seconds=max(0.0, (now - started).total_seconds()),
            transfer_seconds=run.transfer_seconds,
            throughput_mbps=round(throughput, 2) if throughput else None,
            dlq_depth=dlq_depth,
            lister_error=run.lister_error,
            failures=failures,
            content_hosts=list(run.content_hosts),
            hosts_not_allowed=_not_allowed(run.content_hosts, self._settings.allowed_download_hosts),
            listing=listing,
        )

    def queue_drained(self) -> bool:
        """Whether the download queue holds nothing, visible, in flight or delayed (False when unknown).

        Why the listing asks: the "queue drained" alarm starts the report only on its transition into ALARM; a
        queue that drained while the listing was still going (and declined to report then) gives no second
        transition, so the listing reports such a night itself when it ends.
        """
        try:
            answer = self._sqs.get_queue_attributes(QueueUrl=self._settings.queue_url, AttributeNames=_DEPTHS)
        except Exception as exc:
            log.warning("could not read the queue depth: %s", exc)
            return False
        attributes = answer.get("Attributes", {})
        return all(int(attributes.get(name, 0)) == 0 for name in _DEPTHS)

    def _dlq_depth(self) -> int | None:
        if not self._settings.dlq_url:
            return None
        try:
            answer = self._sqs.get_queue_attributes(
                QueueUrl=self._settings.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        except Exception as exc:  # the report matters more than one figure in it
            log.warning("could not read the DLQ depth: %s", exc)
            return None
        return int(answer.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


_DEPTHS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def _not_allowed(hosts: tuple[str, ...], allowed: tuple[str, ...]) -> list[str] | None:
    """The hosts the pinned allow list refuses; None when nothing is pinned."""
    if not allowed:
        return None
    return [host for host in hosts if not host_allowed(f"https://{host}/", allowed)]


def _notes(text: str | None) -> dict[str, Any]:
    """The run's listing notes; unreadable notes (an older or cut record) read as none, never fail a report."""
    if not text:
        return {}
    try:
        notes = json.loads(text)
    except ValueError:
        log.warning("the run's listing notes are not JSON; reporting without them")
        return {}
    return notes if isinstance(notes, dict) else {}


def _names(counts: Any) -> str:
    if not isinstance(counts, Mapping) or not counts:
        return ""
    shown = sorted(counts.items(), key=lambda pair: (-int(pair[1]), str(pair[0])))
    return " (" + ", ".join(f"{name} {count}" for name, count in shown) + ")"


def _total(counts: Any) -> int:
    return sum(int(v) for v in counts.values()) if isinstance(counts, Mapping) else 0


def listing_lines(notes: Mapping[str, Any]) -> list[str]:
    """The report's lines about what the listing skipped and whether its walk was complete (none if nothing)."""
    lines: list[str] = []
    incomplete = notes.get("incomplete")
    if incomplete:
        lines += [
            "",
            f"The listing was INCOMPLETE: {incomplete}.",
            "  The cursor was not moved and this is no finished reconcile: the next night lists them again.",
        ]
    details: list[str] = []
    if _total(notes.get("left_out_types")):
        details.append(
            f"  not archived (settings):  {_total(notes['left_out_types'])}{_names(notes['left_out_types'])}"
        )
    if _total(notes.get("unknown_types")):
        details.append(
            f"  unknown type, skipped:    {_total(notes['unknown_types'])}{_names(notes['unknown_types'])}"
        )
    if _total(notes.get("not_ready")):
        details.append(
            f"  still processing in the cloud: {_total(notes['not_ready'])}{_names(notes['not_ready'])}"
            " — archived on a later night once ready"
        )
    unreadable = int(notes.get("unreadable_count") or 0)
    if unreadable:
        details.append(f"  unreadable, skipped:      {unreadable} (impossible values in the listing)")
        for pair in notes.get("unreadable") or []:
            if isinstance(pair, list) and len(pair) == 2:
                details.append(f"    {pair[0]}: {pair[1]}")
        if unreadable > len(notes.get("unreadable") or []):
            details.append(f"    … and {unreadable - len(notes['unreadable'])} more (see the lister's log)")
    if details:
        lines += ["", "Skipped by the listing:", *details]
    return lines


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
