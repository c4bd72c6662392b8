"""Lambda entry point of the run report.

Started by EventBridge when the "queue drained" alarm enters ALARM (event `detail.state.value`): every run whose
listing is done and whose report is not sent is reported, each on its own. Or directly with `{"run_id": "..."}`:
that run only (the lister's own report goes through `SummaryService` directly). The answer names the newest run
reported at the top level and every one under `runs`.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.app import App, current_app
from pipeline.observability import correlation
from pipeline.services.summary import SummaryRequest

log = logging.getLogger(__name__)


def summarise(app: App, event: Any) -> dict[str, Any]:
    """The handler with its App given: the local runtime and the tests call this."""
    request = SummaryRequest.from_event(event)
    if not request.wanted:
        log.info("ignoring an event that is not an alarm entering ALARM")
        return {"published": False, "reason": "not an ALARM transition"}
    with correlation.bind(correlation_id=request.correlation_id, run_id=request.run_id):
        if request.run_id:
            one = app.summary().report(request.run_id)
            reports = [one] if one is not None else []
        else:
            reports = app.summary().report_pending()
    if not reports:
        return {"published": False}
    runs = [{"run_id": r.run_id, "subject": r.subject(), "report": r.as_json(), "text": r.body()} for r in reports]
    return {"published": True, **{k: v for k, v in runs[-1].items() if k != "run_id"}, "runs": runs}


def handler(event: Any, context: Any) -> dict[str, Any]:
    return summarise(current_app(), event)
