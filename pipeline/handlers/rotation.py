"""Lambda entry point of the credentials rotation (invoked by Secrets Manager, one step per invocation).

Event: `{"SecretId": "<arn or name>", "ClientRequestToken": "<version id>", "Step": "createSecret" | "setSecret" |
"testSecret" | "finishSecret"}`. The protocol and the race with the downloaders' token refresh are explained in
`pipeline.services.rotation`; this adapter only validates the event and wires the collaborators.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeline.app import App, current_app
from pipeline.config import ConfigError
from pipeline.credentials.factory import store_for
from pipeline.observability import correlation
from pipeline.providers.gopro.config import GoProSettings
from pipeline.services.rotation import Notifier, RotationHooks, RotationService, Step, provider_hooks

log = logging.getLogger(__name__)


class BadRotationEvent(ValueError):
    pass


def parse_event(event: Any) -> tuple[str, str, Step]:
    """(secret id, token, step) from a Secrets Manager rotation event."""
    if not isinstance(event, Mapping):
        raise BadRotationEvent("a rotation event must be a JSON object")
    secret_id, token, step = event.get("SecretId"), event.get("ClientRequestToken"), event.get("Step")
    if not isinstance(secret_id, str) or not secret_id or not isinstance(token, str) or not token:
        raise BadRotationEvent("a rotation event needs SecretId and ClientRequestToken strings")
    try:
        return secret_id, token, Step(step)
    except ValueError:
        raise BadRotationEvent(f"unknown rotation step {step!r}") from None


def build_service(app: App, hooks: RotationHooks | None = None) -> RotationService:
    if GoProSettings.of(app.settings).credentials_override.present:
        raise ConfigError("rotation works on the Secrets Manager secret; unset the GOPRO_* token variables")
    _store, lock, _ = store_for(app.settings)  # the very lock the downloaders take before a refresh
    return RotationService(
        secrets=app.client("secretsmanager"),
        lock=lock,
        hooks=hooks or (lambda: provider_hooks(app.settings)),
        metrics=app.metrics,
        notifier=Notifier(app.client("sns"), app.settings.topic_arn, app.settings.environment),
    )


def rotate(app: App, event: Any, *, hooks: RotationHooks | None = None) -> dict[str, str]:
    secret_id, token, step = parse_event(event)
    with correlation.bind(correlation_id=token, provider=app.settings.provider):
        log.info("rotation step %s", step.value)
        build_service(app, hooks).rotate(secret_id, token, step)
    return {"step": step.value, "status": "done"}


def handler(event: Any, context: Any) -> dict[str, str]:
    return rotate(current_app(), event)
