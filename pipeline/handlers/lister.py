"""Lambda entry point of the nightly listing (EventBridge Scheduler), and of its own continuations.

Event: anything from the scheduler (`{"full_reconcile": true}` forces a full listing); `{"continuation": {"run_id",
"correlation_id", "page"}}` when a previous invocation ran out of time. The answer is the listing outcome (JSON),
which the local runtime reads. The night itself is `pipeline.services.listing`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.app import App, current_app
from pipeline.deadline import Deadline
from pipeline.services.listing_models import ListingRequest


def run_listing(
    app: App,
    event: Any,
    *,
    deadline: Deadline | None = None,
    function_arn: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The handler with its App given: the local runtime, the benchmarks and the tests call this."""
    request = ListingRequest.from_event(event)  # BadListerEvent for a malformed continuation
    outcome = app.listing().run(request, deadline=deadline, function_arn=function_arn, now=now)
    return outcome.as_json()


def handler(event: Any, context: Any) -> dict[str, Any]:
    return run_listing(
        current_app(),
        event,
        deadline=Deadline.from_lambda_context(context),
        function_arn=getattr(context, "invoked_function_arn", None),
    )
