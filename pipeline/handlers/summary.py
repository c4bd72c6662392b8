"""Lambda entry point of the run report.

Started by EventBridge when the "queue drained" alarm enters ALARM (event `detail.state.value`), or directly with
`{"run_id": "..."}` (the lister's own report goes through `SummaryService` directly).
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
        report = app.summary().report(request.run_id)
    if report is None:
        return {"published": False}
    return {"published": True, "subject": report.subject(), "report": report.as_json(), "text": report.body()}


def handler(event: Any, context: Any) -> dict[str, Any]:
    return summarise(current_app(), event)
