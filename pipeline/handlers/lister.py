"""Lambda entry point of the nightly listing (EventBridge Scheduler), and of its own continuations.

Event: anything from the scheduler; `{"continuation": {"run_id", "correlation_id", "page"}}` when a previous
invocation ran out of time. The answer is the listing outcome (JSON), which the local runtime reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pipeline.app import App, current_app
from pipeline.observability import correlation
from pipeline.observability.metrics import Metric
from pipeline.providers.errors import AuthError
from pipeline.services.lister import Lister, ListingOutcome
from pipeline.services.summary import SummaryService
from pipeline.state.store import iso_utc, utc_now

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


def run_listing(app: App, event: Any, *, remaining_ms: Any = None, function_arn: str | None = None) -> dict:
    cont = _continuation(event)
    now = utc_now()
    correlation_id = (cont or {}).get("correlation_id") or correlation.correlation_id_from_event(event)
    correlation_id = correlation_id or correlation.new_correlation_id()
    run_id = cont["run_id"] if cont else correlation.new_run_id(iso_utc(now))
    settings = app.settings
    with correlation.bind(correlation_id=correlation_id, run_id=run_id, provider=settings.provider):
        if cont is None:
            app.state.create_run(run_id, correlation_id=correlation_id, started_at=now, provider=settings.provider)
        log.info("listing %s from page %d", settings.provider, (cont or {}).get("page", 1))
        lister = Lister(
            settings=settings,
            provider=app.provider(),
            state=app.state,
            sqs=app.client("sqs"),
            metrics=app.metrics,
            **({"remaining_ms": remaining_ms} if remaining_ms else {}),
        )
        try:
            with app.tracer.subsegment("list_media"):
                outcome = lister.run(
                    run_id=run_id, correlation_id=correlation_id, start_page=(cont or {}).get("page", 1)
                )
        except Exception as exc:
            _record_failure(app, run_id, exc)
            raise
        if outcome.send_failures:
            app.state.update_run(run_id, lister_error=f"{len(outcome.send_failures)} media could not be enqueued")
        if outcome.next_page is not None:
            _continue(app, outcome, correlation_id, function_arn)
        else:
            app.state.update_run(run_id, listing_done=True)
            log.info("listing done: %s", json.dumps(outcome.as_json()))
            run = app.state.get_run(run_id)
            if run is not None and run.enqueued == 0:
                # Nothing was queued, so the queue never "drains" and no alarm starts the summary: report now.
                _report_now(app, run_id)
        return outcome.as_json()


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
    app.state.update_run(run_id, lister_error=message, listing_done=True)


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
