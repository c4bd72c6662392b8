"""The run report service: find the runs to report, claim each report once, gather its figures, publish it.

Exactly once: each report is claimed with a conditional write on the run record before publishing, so a drain
alarm firing twice (or the lister and the alarm both asking) sends one message. A claim whose publisher died
goes stale and a later trigger may take it over.

Every run its own report: when the queue drains, every recent run whose listing is done and whose report is not
sent is reported (`report_pending`, through the store's set of unreported runs), each with its own counters, so
two overlapping nights each get theirs. What a report says is `pipeline.services.report`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline import resources
from pipeline.clock import iso_utc, parse_iso_utc, utc_now
from pipeline.config import Settings
from pipeline.observability import correlation
from pipeline.observability.metrics import MetricsEmitter
from pipeline.services.report import FailedMedia, Outcome, RunReport, outcome_of
from pipeline.services.report_text import backlog_figures, library_figures
from pipeline.state import MediaStatus, RunRecord, StateStore
from pipeline.transfer.url_policy import host_allowed

log = logging.getLogger(__name__)

MAX_FAILURES_LISTED = 50
# A drain reports at most this many runs (the newest unreported ones); runs older than the queue's retention and
# a day are left out (no message of theirs can still be on its way, and a run that never finished listing would
# otherwise be asked about forever).
MAX_RUNS_PER_DRAIN = 10
RECENT_RUN_DAYS = resources.QUEUE_RETENTION_DAYS + 1

__all__ = ["FailedMedia", "Outcome", "RunReport", "SummaryRequest", "SummaryService"]


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
        return self._report_run(run, now)

    def report_pending(self, *, now: datetime | None = None) -> list[RunReport]:
        """Publishes the report of every recent run whose listing is done and whose report is not sent, oldest
        first, each with its own figures (what the drain alarm asks for). One failed publish does not stop the
        others; the first error is raised at the end so the invocation's retry sends what is left."""
        moment = now or self._state.clock()
        runs = {r.run_id: r for r in self._state.runs.unreported(self._settings.provider, MAX_RUNS_PER_DRAIN)}
        latest = self._find_run(None)  # a run from before the set of unreported runs existed
        if latest is not None:
            runs.setdefault(latest.run_id, latest)
        oldest = moment - timedelta(days=RECENT_RUN_DAYS)
        reports: list[RunReport] = []
        errors: list[Exception] = []
        for run in sorted(runs.values(), key=lambda r: (r.started_at, r.run_id)):
            if _started(run) < oldest:
                log.warning("run %s is older than %d days and unreported; skipped", run.run_id, RECENT_RUN_DAYS)
                self._state.runs.forget_unreported(run.provider, {run.run_id})
                continue
            try:
                report = self._report_run(run, now)
            except Exception as exc:  # the other runs still get their reports
                log.exception("could not publish the report of run %s", run.run_id)
                errors.append(exc)
                continue
            if report is not None:
                reports.append(report)
        if errors:
            raise errors[0]
        return reports

    def _report_run(self, run: RunRecord, now: datetime | None) -> RunReport | None:
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
        self._state.runs.mark_report_sent(run.run_id, now=now, provider=run.provider)
        log.info("published the report of run %s: %s", run.run_id, report.outcome.value)
        return report

    def build(self, run: RunRecord, *, now: datetime) -> RunReport:
        """The report of `run` as of `now` (reads the run's failed media, the media it found held by another
        run's worker, the DLQ depth and the archive's total; publishes nothing)."""
        failures = [
            FailedMedia(r.media_id, r.last_error or "unknown error", r.attempts, r.filename)
            for r in self._state.media.list_by_status(MediaStatus.FAILED, MAX_FAILURES_LISTED, run_id=run.run_id)
        ]
        elsewhere_done, elsewhere_failed = self._leased_elsewhere_outcomes(run)
        dlq_depth = self._dlq_depth()
        notes = _notes(run.listing_notes)
        backlog = backlog_figures(notes)
        library_size, library_listed_at = library_figures(notes)
        archived_elsewhere = run.duplicates + elsewhere_done
        failed = run.failed + elsewhere_failed
        finished = run.synced + archived_elsewhere + run.source_deleted + failed
        unfinished = max(0, run.enqueued - finished)
        from_backlog = min(backlog.get("queued_from_backlog", 0), run.enqueued)
        total = self._archive_total(run.provider)
        started = parse_iso_utc(run.started_at)
        throughput = (run.bytes_transferred * 8 / 1e6 / run.transfer_seconds) if run.transfer_seconds else None
        outcome = outcome_of(
            enqueued=run.enqueued,
            archived=run.synced + archived_elsewhere,
            failed=failed,
            unfinished=unfinished,
            dlq_depth=dlq_depth,
            lister_error=run.lister_error,
            incomplete=bool(notes.get("incomplete")),
        )
        return RunReport(
            run_id=run.run_id,
            environment=self._settings.environment,
            provider=run.provider,
            outcome=outcome,
            started_at=run.started_at,
            reported_at=iso_utc(now, timespec="auto"),
            duration_seconds=max(0.0, (now - started).total_seconds()),
            mode=notes.get("mode") if notes.get("mode") in ("full", "incremental") else None,
            library_size=library_size,
            library_listed_at=library_listed_at,
            listed=run.listed,
            skipped=run.skipped,
            already_archived=run.already_archived,
            not_queued=max(0, run.listed - (run.enqueued - from_backlog) - run.skipped - run.already_archived),
            enqueued=run.enqueued,
            queued_from_backlog=from_backlog,
            waiting=backlog.get("waiting"),
            waiting_bytes=backlog.get("waiting_bytes"),
            backlog_ends_at=backlog.get("ends_at"),
            synced=run.synced,
            archived_elsewhere=archived_elsewhere,
            source_deleted=run.source_deleted,
            failed=failed,
            unfinished=unfinished,
            bytes_transferred=run.bytes_transferred,
            transfer_seconds=run.transfer_seconds,
            throughput_mbps=round(throughput, 2) if throughput else None,
            retried=run.retried,
            redelivered=run.redelivered,
            poison=run.poison,
            duplicates=run.duplicates,
            leased_elsewhere=run.leased_elsewhere,
            overcounted=max(0, finished - run.enqueued),
            dlq_depth=dlq_depth,
            lister_error=run.lister_error,
            total_archived=total[0] if total else None,
            total_archived_bytes=total[1] if total else None,
            failures=failures,
            content_hosts=list(run.content_hosts),
            hosts_not_allowed=_not_allowed(run.content_hosts, self._settings.allowed_download_hosts),
            listing=notes,
        )

    def _leased_elsewhere_outcomes(self, run: RunRecord) -> tuple[int, int]:
        """(COMPLETED, FAILED) among the media this run found held by another run's worker, by their records
        now (one BatchGetItem per 100). Those not kept by id (a full set) count as neither: not finished."""
        if not run.leased_elsewhere_ids:
            return 0, 0
        try:
            records = self._state.media.batch_get(run.provider, run.leased_elsewhere_ids, consistent=True)
        except Exception as exc:  # the report matters more than these figures: they stay "not finished"
            log.warning("could not read the media held by other runs: %s", exc)
            return 0, 0
        statuses = [record.status for record in records.values()]
        return statuses.count(MediaStatus.COMPLETED), statuses.count(MediaStatus.FAILED)

    def _archive_total(self, provider: str) -> tuple[int, int] | None:
        try:
            total = self._state.totals.archived(provider)
        except Exception as exc:  # one figure of the report; never a reason to lose it
            log.warning("could not read the archive's total: %s", exc)
            return None
        return total.media, total.bytes

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


def _started(run: RunRecord) -> datetime:
    try:
        return parse_iso_utc(run.started_at)
    except ValueError:
        return utc_now()  # an unreadable start time: treat the run as recent rather than drop its report
