"""Lambda entry point of the nightly listing (EventBridge Scheduler), and of its own continuations.

Event: anything from the scheduler (`{"full_reconcile": true}` forces a full listing); `{"continuation": {"run_id",
"correlation_id", "page"}}` when a previous invocation ran out of time. The answer is the listing outcome (JSON),
which the local runtime reads.

What a night costs, and why (docs/performance.md, "Listing"): the listing cursor is read once; tonight's mode
(full or incremental) comes from it. A full night creates its run record at once and always ends with a report
(so the weekly reconcile is also a weekly heartbeat). An incremental night creates the run record only when it
finds something new: a night with nothing new is one provider call, the credentials read and the cursor read,
and sends no report unless `REPORT_QUIET_NIGHTS` asks for one. A continued listing keeps its mode: the cursor
holds the listing's progress (`in_progress`) until its last invocation moves the high-water mark.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pipeline.app import App, current_app
from pipeline.clock import iso_utc, utc_now
from pipeline.observability import correlation
from pipeline.observability.metrics import Metric
from pipeline.providers.errors import AuthError
from pipeline.services.lister import FULL, Lister, ListingCursor, ListingOutcome, ListingProgress
from pipeline.services.summary import SummaryService
from pipeline.state import RunRecord

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 1000


class BadListerEvent(ValueError):
    pass


def _continuation(event: Any) -> dict[str, Any] | None:
    if not isinstance(event, Mapping) or "continuation" not in event:
        return None
    cont = event["continuation"]
    if (
        not isinstance(cont, Mapping)
        or not isinstance(cont.get("run_id"), str)
        or not isinstance(cont.get("correlation_id"), str)
        or not isinstance(cont.get("page"), int)
        or cont["page"] < 1
    ):
        raise BadListerEvent("a continuation needs run_id, correlation_id (strings) and page (integer >= 1)")
    return dict(cont)


def _force_full(event: Any) -> bool:
    return isinstance(event, Mapping) and event.get("full_reconcile") is True


def _start(
    app: App, event: Any, cont: dict[str, Any] | None, now: datetime
) -> tuple[ListingCursor, ListingProgress]:
    """Tonight's cursor and progress: a new listing planned from the cursor, or the continued one it holds."""
    settings = app.settings
    cursor = ListingCursor.from_json(app.state.cursors.get(settings.provider))
    if cont is not None:
        progress = cursor.in_progress
        if progress is None or progress.run_id != cont["run_id"]:
            # A continuation the cursor does not know (started by an older version, or the cursor was reset):
            # finish it as a full listing, as before; the high-water mark is not moved by it.
            log.warning("continuation of run %s without its progress in the cursor: full listing", cont["run_id"])
            progress = ListingProgress(run_id=cont["run_id"], mode=FULL, run_created=True, moves_cursor=False)
        return cursor, progress
    run_id = correlation.new_run_id(iso_utc(now))
    plan = cursor.plan(now, settings.full_reconcile_days, force_full=_force_full(event))
    progress = ListingProgress(
        run_id=run_id,
        mode=plan.mode,
        newer_than=iso_utc(plan.newer_than) if plan.newer_than else None,
        started_at=iso_utc(now),
    )
    return cursor, progress


def run_listing(
    app: App,
    event: Any,
    *,
    remaining_ms: Any = None,
    function_arn: str | None = None,
    now: datetime | None = None,
) -> dict:
    cont = _continuation(event)
    now = now or utc_now()
    correlation_id = (cont or {}).get("correlation_id") or correlation.correlation_id_from_event(event)
    correlation_id = correlation_id or correlation.new_correlation_id()
    settings = app.settings
    cursor, progress = _start(app, event, cont, now)
    run_id = progress.run_id
    with correlation.bind(correlation_id=correlation_id, run_id=run_id, provider=settings.provider):

        def ensure_run() -> None:
            if not progress.run_created:
                app.state.runs.create(
                    run_id, correlation_id=correlation_id, started_at=now, provider=settings.provider
                )
                progress.run_created = True

        if progress.mode == FULL or settings.report_quiet_nights:
            ensure_run()  # a night that will report needs its run record whatever it finds
        log.info(
            "listing %s from page %d (%s%s)",
            settings.provider,
            (cont or {}).get("page", 1),
            progress.mode,
            f" after {progress.newer_than}" if progress.newer_than else "",
        )
        lister = Lister(
            settings=settings,
            provider=app.provider(),
            state=app.state,
            sqs=app.client("sqs"),
            metrics=app.metrics,
            ensure_run=ensure_run,
            **({"remaining_ms": remaining_ms} if remaining_ms else {}),
        )
        try:
            with app.tracer.subsegment("list_media"):
                outcome = lister.run(
                    run_id=run_id,
                    correlation_id=correlation_id,
                    start_page=(cont or {}).get("page", 1),
                    plan=progress.plan(),
                    finish_run=True,
                )
        except Exception as exc:
            try:
                ensure_run()  # a failure is always reported: the summary needs the run record
                _record_failure(app, run_id, exc)
            except Exception:
                log.exception("could not record the failure of run %s", run_id)
            raise
        progress.absorb(outcome)
        if outcome.next_page is not None:
            if outcome.send_failures:
                app.state.runs.update(
                    run_id, lister_error=f"{len(outcome.send_failures)} media could not be enqueued"
                )
            app.state.cursors.put(settings.provider, {**cursor.as_json(), "in_progress": progress.as_json()})
            _continue(app, outcome, correlation_id, function_arn)
            return outcome.as_json()
        _finish(app, cursor, progress, outcome, lister.unflushed_counts(), now)
        return outcome.as_json()


def _finish(
    app: App,
    cursor: ListingCursor,
    progress: ListingProgress,
    outcome: ListingOutcome,
    counts: dict[str, int],
    now: datetime,
) -> None:
    """Move the cursor, close the run record, and report a night that queued nothing if it should be reported."""
    settings = app.settings
    moved = cursor.finished(progress, now=now, hold_window=timedelta(days=max(1, settings.full_reconcile_days)))
    if moved.as_json() != cursor.as_json():  # a quiet incremental night writes nothing
        app.state.cursors.put(settings.provider, moved.as_json())
    log.info("listing done: %s", json.dumps(outcome.as_json()))
    if not progress.run_created:
        log.info("nothing new since %s: no run record, no report", progress.newer_than)
        return
    error = f"{len(outcome.send_failures)} media could not be enqueued" if outcome.send_failures else None
    run = app.state.runs.finish_listing(progress.run_id, lister_error=error, **counts)
    if _should_report(run, progress, settings.report_quiet_nights):
        # Nothing was queued, so the queue never "drains" and no alarm starts the summary: report now.
        _report_now(app, progress.run_id)


def _should_report(run: RunRecord | None, progress: ListingProgress, quiet_nights: bool) -> bool:
    if run is None or run.enqueued:
        return False
    return progress.mode == FULL or quiet_nights or bool(run.lister_error)


def _report_now(app: App, run_id: str) -> None:
    try:
        SummaryService(
            settings=app.settings,
            state=app.state,
            sns=app.client("sns"),
            sqs=app.client("sqs"),
            metrics=app.metrics,
        ).report(run_id)
    except Exception:  # the report must never hide the listing's own outcome
        log.exception("could not publish the report of run %s", run_id)


def _record_failure(app: App, run_id: str, exc: Exception) -> None:
    message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    log.error("listing failed: %s", message)
    app.metrics.count(Metric.LISTER_FAILURES)
    if isinstance(exc, AuthError):
        app.metrics.count(Metric.AUTHENTICATION_FAILURES, reauth_required=int(exc.reauth_required))
    app.state.runs.update(run_id, lister_error=message, listing_done=True)


def _continue(app: App, outcome: ListingOutcome, correlation_id: str, function_arn: str | None) -> None:
    payload = {
        "continuation": {"run_id": outcome.run_id, "correlation_id": correlation_id, "page": outcome.next_page}
    }
    if function_arn:
        app.client("lambda").invoke(FunctionName=function_arn, InvocationType="Event", Payload=json.dumps(payload))
        log.info("continuing the listing at page %d in a new invocation", outcome.next_page)


def handler(event: Any, context: Any) -> dict:
    app = current_app()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return run_listing(
        app, event, remaining_ms=remaining, function_arn=getattr(context, "invoked_function_arn", None)
    )
