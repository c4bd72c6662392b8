"""The nightly listing, start to end: what in the cloud library is not yet archived, one SQS message per medium.

One invocation goes one way: plan from the cursor (`ListingCursor.progress_for`) → page loop (batch-get the
records, enqueue the new media) → either hand the rest to a fresh invocation (time ran out) or finish the night
(move the cursor, finish the run record, report a night that queued nothing) → a `ListingOutcome`.

What a night costs, and why (docs/performance.md, "Listing"): reads are per page, not per video: one provider
call, one BatchGetItem (100 keys) and ten SendMessageBatch calls for 100 new media. Each new medium adds two
single-item writes, its PENDING record (a conditional put) and its queued mark (a conditional update): neither
can be batched, since BatchWriteItem takes no condition, and they are what keeps a medium that did not fit
tonight, and one live message per medium; a medium already known costs nothing more. The run's counters are written
every `COUNTER_FLUSH_PAGES` pages, not every page. The cursor is read once. A full night creates its run record at
once and always ends with a report (so the weekly reconcile is also a weekly heartbeat). An incremental night
creates the run record only when it finds something new: a night with nothing new is one search call (after the
credentials check), the credentials read and the cursor read, and sends no report unless `REPORT_QUIET_NIGHTS`
asks for one. A continued listing keeps its mode: the cursor holds its progress (`in_progress`) until its last
invocation moves the mark.

A backfill fits the queue (`pipeline.services.backlog`): every wanted medium gets a PENDING record when first
listed, and a night queues what waits in the table first (oldest first), then tonight's new media, until the
night's byte budget is spent; the rest waits for the next night, whatever its mode.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pipeline import resources
from pipeline.clock import utc_now
from pipeline.config import Settings
from pipeline.deadline import Deadline
from pipeline.observability import correlation
from pipeline.observability.metrics import Metric, MetricsEmitter, Unit
from pipeline.observability.tracing import Tracer
from pipeline.providers.base import CloudProvider, MediaItem
from pipeline.queueing import send_download_messages
from pipeline.services import backlog as bl
from pipeline.services.backlog import Candidate, NightBudget
from pipeline.services.backlog import skip_reason as skip_reason  # public here too: scripts/_audit_checks.py
from pipeline.services.listing_models import (
    ListingCursor,
    ListingMode,
    ListingOutcome,
    ListingProgress,
    ListingRequest,
    RunCounts,
    SkipReason,
    should_report,
)
from pipeline.services.provider_failures import count_provider_failure
from pipeline.services.summary import SummaryService
from pipeline.state import MediaRecord, RunRecord, StateStore

log = logging.getLogger(__name__)

# Run counters are flushed every this many pages (and always at the end of an invocation): one UpdateItem per
# page would be 0.01 AWS calls per listed medium on its own.
COUNTER_FLUSH_PAGES = 10
# A medium not ready in the cloud will most often become downloadable (loading, registered, transcoding,
# processing, uploading, pretranscoding, updating, live, stabilizing, and any state not seen yet), so it keeps
# the high-water mark below itself; only these will not by waiting, and are left to the next full reconcile.
NEVER_READY_STATES = frozenset({"failure"})
# Time an invocation keeps back after a page: less than this left, the rest goes to a fresh invocation.
MIN_REMAINING_SECONDS = 60.0
MAX_ERROR_CHARS = 1000


class _Night:
    """Tonight's run record, and every state-store call the listing makes about it.

    Why one object: the run record is created on first need (an incremental night creates it only if it finds
    something: a message or a counter needs it), counters are batched, and the listing's calls into the state
    store stay in one place.
    """

    def __init__(
        self,
        state: StateStore,
        provider: str,
        progress: ListingProgress,
        *,
        correlation_id: str,
        now: datetime,
        cursor: ListingCursor,
    ) -> None:
        self._state = state
        self._provider = provider
        self.progress = progress
        self.correlation_id = correlation_id
        self._now = now
        self.cursor = cursor
        self.counts = RunCounts()

    @property
    def budget(self) -> NightBudget:
        if self.progress.budget is None:
            self.progress.budget = NightBudget()
        return self.progress.budget

    @property
    def run_id(self) -> str:
        return self.progress.run_id

    def ensure_run(self) -> None:
        if not self.progress.run_created:
            self._state.runs.create(
                self.run_id, correlation_id=self.correlation_id, started_at=self._now, provider=self._provider
            )
            self.progress.run_created = True

    def flush(self) -> None:
        """Write the counters gathered since the last flush (creating the run record if need be)."""
        if not self.counts:
            return
        self.ensure_run()
        self._state.runs.update(self.run_id, **self.counts.take())

    def records(self, media_ids: list[str]) -> dict[str, MediaRecord]:
        """The records `media_ids` have (one BatchGetItem per 100 ids)."""
        return self._state.media.batch_get(self._provider, media_ids)

    def note_error(self, message: str, *, listing_done: bool | None = None) -> None:
        self._state.runs.update(self.run_id, lister_error=message, listing_done=listing_done)

    def finish(self, error: str | None) -> RunRecord | None:
        """The last write: the counters left, `listing_done`, the error and the notes, answered with the whole
        record."""
        notes = json.dumps(self.progress.notes.report_json(), sort_keys=True)
        return self._state.runs.finish_listing(self.run_id, lister_error=error, notes=notes, **self.counts.take())


class ListingService:
    def __init__(
        self,
        *,
        settings: Settings,
        provider: CloudProvider,
        state: StateStore,
        sqs: Any,
        metrics: MetricsEmitter,
        summary: SummaryService,
        tracer: Tracer,
        lambda_client: Any,
    ) -> None:
        """`summary` reports a night that queued nothing (no drain alarm will); `lambda_client` invokes the
        continuation of a listing out of time."""
        self._settings = settings
        self._provider = provider
        self._state = state
        self._sqs = sqs
        self._metrics = metrics
        self._summary = summary
        self._lambda = lambda_client
        self._tracer = tracer

    # --- the night ---------------------------------------------------------------------------------------------

    def run(
        self,
        request: ListingRequest,
        *,
        deadline: Deadline | None = None,
        function_arn: str | None = None,
        now: datetime | None = None,
    ) -> ListingOutcome:
        """One invocation of the listing. `function_arn`: the function a continuation is invoked as (None: the
        caller continues it, as the local runtime does)."""
        now = now or utc_now()
        settings = self._settings
        cursor = ListingCursor.from_json(self._state.cursors.get(settings.provider))
        progress = cursor.progress_for(request, now=now, reconcile_days=settings.full_reconcile_days)
        correlation_id = request.correlation_id or correlation.new_correlation_id()
        night = _Night(
            self._state, settings.provider, progress, correlation_id=correlation_id, now=now, cursor=cursor
        )
        with correlation.bind(correlation_id=correlation_id, run_id=night.run_id, provider=settings.provider):
            if progress.mode is ListingMode.FULL or settings.report_quiet_nights:
                night.ensure_run()  # a night that will report needs its run record whatever it finds
            log.info(
                "listing %s from page %d (%s%s)",
                settings.provider,
                request.page,
                progress.mode,
                f" after {progress.newer_than}" if progress.newer_than else "",
            )
            try:
                # Preflight (credentials helper): one cheap authenticated call before any listing work.
                self._provider.check_credentials(min_validity_seconds=settings.token_refresh_margin_seconds)
                with self._tracer.subsegment("list_media"):
                    outcome = self._list(night, request.page, deadline or Deadline.never(), now)
            except Exception as exc:
                self._record_failure(night, exc)
                raise
            progress.absorb(outcome)
            if outcome.next_page is None:
                self._finish(night, cursor, outcome, now)
            else:
                self._hand_over(night, cursor, outcome, outcome.next_page, function_arn)
            return outcome

    def _hand_over(
        self,
        night: _Night,
        cursor: ListingCursor,
        outcome: ListingOutcome,
        next_page: int,
        function_arn: str | None,
    ) -> None:
        """Keep the progress in the cursor and invoke the continuation asynchronously."""
        if outcome.send_failures:
            night.note_error(f"{len(outcome.send_failures)} media could not be enqueued")
        self._save_cursor(cursor.continuing(night.progress))
        if function_arn:
            payload = ListingRequest.continuation_event(night.run_id, night.correlation_id, next_page)
            self._lambda.invoke(FunctionName=function_arn, InvocationType="Event", Payload=json.dumps(payload))
            log.info("continuing the listing at page %d in a new invocation", next_page)

    def _finish(self, night: _Night, cursor: ListingCursor, outcome: ListingOutcome, now: datetime) -> None:
        """Move the cursor, close the run record, and report a night that queued nothing if it should be."""
        progress = night.progress
        hold_window = timedelta(days=max(1, self._settings.full_reconcile_days))
        clear = night.budget.clear_until(
            self._state.clock(), cursor.backlog_clear_until, days=self._settings.full_reconcile_days
        )
        moved = replace(cursor.finished(progress, now=now, hold_window=hold_window), backlog_clear_until=clear)
        if moved.as_json() != cursor.as_json():  # a quiet incremental night writes nothing
            self._save_cursor(moved)
        log.info("listing done: %s", json.dumps(outcome.as_json()))
        incomplete = progress.notes.incomplete
        if incomplete:
            log.warning("the listing walk is incomplete (%s): the cursor stays where it was", incomplete)
        if progress.notes.worth_reporting:
            night.ensure_run()  # an incomplete walk or an unreadable medium is reported even on a quiet night
        budget = night.budget
        self._metrics.count(Metric.BACKLOG_WAITING, budget.waiting)
        if not progress.run_created:
            log.info("nothing new since %s: no run record, no report", progress.newer_than)
            return
        if not budget.measured:
            self._measure(night)
        progress.notes.mode = progress.mode.value
        progress.notes.library = moved.library
        progress.notes.backlog = budget.report_json(now)
        error = f"{len(outcome.send_failures)} media could not be enqueued" if outcome.send_failures else None
        run = night.finish(error)
        if should_report(run, progress, self._settings.report_quiet_nights) or self._drained_early(run):
            # Nothing was queued (the queue never "drains", no alarm starts the summary), or it drained while the
            # listing went on (the summary declined then and the alarm will not fire again): report now.
            self._report(night.run_id)

    def _drained_early(self, run: RunRecord | None) -> bool:
        return run is not None and run.enqueued > 0 and self._summary.queue_drained()

    def _report(self, run_id: str) -> None:
        try:
            self._summary.report(run_id)
        except Exception:  # the report must never hide the listing's own outcome
            log.exception("could not publish the report of run %s", run_id)

    def _record_failure(self, night: _Night, exc: Exception) -> None:
        """A failed listing is always reported: record why in the run record, count it, and report it now unless
        media it queued are still on their way (then the drain alarm starts the report)."""
        try:
            night.ensure_run()
            message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            log.error("listing failed: %s", message)
            self._metrics.count(Metric.LISTER_FAILURES)
            count_provider_failure(self._metrics, exc)
            night.flush()
            night.note_error(message, listing_done=True)
            run = self._state.runs.get(night.run_id)
        except Exception:
            log.exception("could not record the failure of run %s", night.run_id)
            return
        if run is not None and (run.enqueued == 0 or self._summary.queue_drained()):
            # No drain alarm will start the summary (nothing queued, or drained already): the CRITICAL report
            # of a failed night is sent now.
            self._report(night.run_id)

    def _save_cursor(self, cursor: ListingCursor) -> None:
        self._state.cursors.put(self._settings.provider, cursor.as_json())

    # --- the page loop -----------------------------------------------------------------------------------------

    def _list(self, night: _Night, start_page: int, deadline: Deadline, now: datetime) -> ListingOutcome:
        """List from `start_page` until the library ends or time runs out (then `next_page` says where to go on).

        An incremental listing asks for media created after the mark and up to `now` (the night's explicit end).
        Counters are flushed every few pages and when the invocation hands over; a finished night leaves the last
        ones in `night.counts` for its final write.
        """
        plan = night.progress.plan()
        notes = night.progress.notes
        outcome = ListingOutcome(run_id=night.run_id, mode=plan.mode)
        self._provider.ensure_authenticated(min_validity_seconds=self._settings.token_refresh_margin_seconds)
        if night.progress.budget is None:  # the night's first invocation: what waits in the table goes first
            queued = self._queue_backlog(night)
            outcome.add(queued)
            night.counts.add(queued)
        seen: set[str] = set()
        walked: set[str] = set(notes.boundary_ids)
        until = now if plan.incremental else None
        try:
            for page in self._provider.iter_pages(start_page=start_page, newer_than=plan.newer_than, until=until):
                outcome.pages += 1
                notes.check_page(page, walked)
                fresh = [item for item in page.items if item.media_id not in seen]
                seen.update(item.media_id for item in fresh)
                page_outcome = self._handle_page(fresh, night)
                for label, reason in page.skipped_entries():
                    page_outcome.skipped[SkipReason.MALFORMED] += 1
                    notes.note_unreadable(label, reason)
                    log.warning("page %d: skipped unreadable medium %s: %s", page.page, label, reason)
                outcome.add(page_outcome)
                night.counts.add(page_outcome)
                if outcome.pages % COUNTER_FLUSH_PAGES == 0:
                    night.flush()
                last_page = page.total_pages is not None and page.page >= page.total_pages
                if not last_page and deadline.near(MIN_REMAINING_SECONDS):
                    outcome.next_page = page.page + 1
                    log.info("stopping the listing after page %d to continue in a fresh invocation", page.page)
                    break
        except BaseException:
            try:
                night.flush()
            except Exception:  # the listing's own error matters more than a counter
                log.exception("could not write the run counters after a failed listing")
            raise
        if not outcome.done:
            night.flush()
        self._metrics.emit(
            {
                Metric.VIDEOS_LISTED: (outcome.listed, Unit.COUNT),
                Metric.VIDEOS_ENQUEUED: (outcome.enqueued, Unit.COUNT),
            }
        )
        return outcome

    def _handle_page(self, items: list[MediaItem], night: _Night) -> ListingOutcome:
        outcome = ListingOutcome(run_id=night.run_id, listed=len(items))
        wanted: list[MediaItem] = []
        notes = night.progress.notes
        for item in items:
            reason = self._skip_reason(item)
            held = reason is SkipReason.NOT_READY and item.ready_state.lower() not in NEVER_READY_STATES
            outcome.saw(item.created_at, held=held)
            if reason:
                outcome.skipped[reason] += 1
                notes.note_skip(item, reason)
                log.info("skipping %s (%s, %s)", item.media_id, reason, item.excluded or item.raw_type or "")
            else:
                wanted.append(item)
        if not wanted:
            return outcome
        full = night.progress.mode is ListingMode.FULL
        records = night.records([item.media_id for item in wanted])
        split, candidates = bl.page_candidates(
            self._state, self._provider.name, wanted, records, run_id=night.run_id, full=full
        )
        outcome.already_archived = split.archived
        outcome.send_failures = list(split.unregistered)  # the cursor holds: the next night lists them again
        if candidates:
            queued = self._queue(night, candidates, from_backlog=False)
            outcome.enqueued = queued.enqueued
            outcome.send_failures += queued.send_failures
        return outcome

    # --- the budget and the backlog ----------------------------------------------------------------------------

    def _queue_backlog(self, night: _Night) -> ListingOutcome:
        """What waits in the table, queued first: media left IN_PROGRESS past their lease (their worker died;
        an incremental night never lists them again), then PENDING media without a live message, oldest first.
        Media whose message expired unprocessed are counted, alarmed (`MessagesExpired`) and queued again."""
        clear_until = night.cursor.backlog_clear_until
        due = night.progress.mode is ListingMode.FULL or NightBudget.pending_due(clear_until, self._state.clock())
        backlog = bl.read_backlog(self._state, self._provider.name, pending=due)
        night.budget.live_until = None if due else clear_until
        bl.note_backlog(night.budget, backlog)
        self._metrics.count(Metric.MESSAGES_EXPIRED, len(backlog.expired))
        if backlog.expired:
            log.warning(
                "%d queued medium(s) found PENDING past their message's retention (expired unprocessed),"
                " queued again: %s",
                len(backlog.expired),
                ", ".join(backlog.expired[:20]),
            )
        if backlog.abandoned:
            log.warning("re-enqueuing %d medium(s) left IN_PROGRESS past their lease", len(backlog.abandoned))
        if not backlog.candidates:
            return ListingOutcome(run_id=night.run_id)
        queued = self._queue(night, backlog.candidates, from_backlog=True)
        queued.send_failures = []  # they wait in the table: the next night's backlog has them
        return queued

    def _measure(self, night: _Night) -> None:
        budget = bl.measure_budget(self._state, self._settings.nightly_budget_bytes, night.cursor.recent_runs)
        night.budget.use(budget)
        log.info("tonight's budget: %d bytes (%s)", budget.bytes, budget.source)

    def _queue(self, night: _Night, candidates: list[Candidate], *, from_backlog: bool) -> ListingOutcome:
        """Queue `candidates` in order while the budget lasts: each marked queued (conditionally: never a second
        live message) before its message is sent, and unmarked again if the send fails."""
        if not night.budget.measured:
            self._measure(night)
        provider = self._provider.name

        def mark(candidate: Candidate) -> bool | None:
            return bl.try_mark(self._state, provider, candidate, run_id=night.run_id)

        admitted = bl.select(candidates, night.budget, from_backlog=from_backlog, mark=mark)
        outcome = ListingOutcome(run_id=night.run_id)
        if not admitted:
            return outcome
        night.ensure_run()  # a downloader adds to the run's counters: it must exist before any message
        ids = {"run_id": night.run_id, "correlation_id": night.correlation_id, "provider": provider}
        messages = [c.message(**ids) for c in admitted]
        report = send_download_messages(self._sqs, self._settings.queue_url, messages)
        outcome.enqueued = len(report.sent)
        night.budget.note_live(self._state.clock() + timedelta(days=resources.QUEUE_RETENTION_DAYS))
        by_id = {c.media_id: c for c in admitted}
        for failure in report.failed:
            log.error("could not enqueue %s: %s %s", failure.media_id, failure.code, failure.message)
            outcome.send_failures.append(failure.media_id)
            bl.try_unmark(self._state, provider, failure.media_id, run_id=night.run_id)
            night.budget.refund(by_id[failure.media_id].cost, from_backlog=from_backlog)
        return outcome

    def _skip_reason(self, item: MediaItem) -> SkipReason | None:
        return skip_reason(self._provider, item, include_photos=self._settings.include_photos)
