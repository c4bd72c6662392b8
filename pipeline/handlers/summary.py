"""Lambda entry point of the run report.

Started by EventBridge when the "queue drained" alarm enters ALARM (event `detail.state.value`), or directly with
`{"run_id": "..."}` (the lister does so for a night with nothing to download, or after it failed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeline.app import App, current_app
from pipeline.observability import correlation
from pipeline.services.summary import SummaryService

log = logging.getLogger(__name__)


def _wanted(event: Any) -> tuple[bool, str | None]:
    """(should report, run id) from an alarm state-change event or a direct request."""
    if not isinstance(event, Mapping):
        return False, None
    detail = event.get("detail")
    if isinstance(detail, Mapping) and isinstance(detail.get("state"), Mapping):
        return detail["state"].get("value") == "ALARM", None
    run_id = event.get("run_id")
    return True, run_id if isinstance(run_id, str) and run_id else None


def summarise(app: App, event: Any) -> dict[str, Any]:
    wanted, run_id = _wanted(event)
    if not wanted:
        log.info("ignoring an event that is not an alarm entering ALARM")
        return {"published": False, "reason": "not an ALARM transition"}
    service = SummaryService(
        settings=app.settings, state=app.state, sns=app.client("sns"), sqs=app.client("sqs"), metrics=app.metrics
    )
    with correlation.bind(correlation_id=correlation.correlation_id_from_event(event), run_id=run_id):
        report = service.report(run_id)
    if report is None:
        return {"published": False}
    return {"published": True, "subject": report.subject(), "report": report.as_json(), "text": report.body()}


def handler(event: Any, context: Any) -> dict[str, Any]:
    return summarise(current_app(), event)
