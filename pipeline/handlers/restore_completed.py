"""Lambda entry point of the archive bucket's `s3:ObjectRestore:Completed` notifications (see
`pipeline.services.restore_completed`): one SNS message per restore request once all of it is readable."""

from __future__ import annotations

from typing import Any

from pipeline.app import App, current_app
from pipeline.services.restore_completed import restored_objects


def restore_completed(app: App, event: Any) -> dict[str, Any]:
    """The handler with its App given: the tests call this."""
    return app.restore_completed().handle(restored_objects(event))


def handler(event: Any, context: Any) -> dict[str, Any]:
    return restore_completed(current_app(), event)
