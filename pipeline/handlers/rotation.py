"""Lambda entry point of the credentials rotation (invoked by Secrets Manager, one step per invocation).

Event: `{"SecretId": "<arn or name>", "ClientRequestToken": "<version id>", "Step": "createSecret" | "setSecret" |
"testSecret" | "finishSecret"}`. The protocol and the race with the downloaders' token refresh are explained in
`pipeline.services.rotation`; this adapter only reads the event and calls the service.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.app import App, current_app
from pipeline.observability import correlation
from pipeline.services.rotation import RotationRequest

log = logging.getLogger(__name__)


def rotate(app: App, event: Any) -> dict[str, str]:
    """The handler with its App given: the tests call this."""
    request = RotationRequest.from_event(event)  # BadRotationEvent for a malformed event
    with correlation.bind(correlation_id=request.token, provider=app.settings.provider):
        log.info("rotation step %s", request.step.value)
        app.rotation().rotate(request.secret_id, request.token, request.step)
    return {"step": request.step.value, "status": "done"}


def handler(event: Any, context: Any) -> dict[str, str]:
    return rotate(current_app(), event)
