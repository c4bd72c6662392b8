"""Lambda entry point of the downloader: an SQS event in, a partial batch response out.

Only the records listed in `batchItemFailures` are retried by SQS; every other record of the batch is deleted.
Anything unexpected while handling one record fails that record alone (never the whole batch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.app import App, current_app
from pipeline.services.downloader import Downloader, RecordOutcome

log = logging.getLogger(__name__)


def process_event(
    app: App, event: Any, *, remaining_seconds: Callable[[], float] | None = None
) -> dict[str, list[dict[str, str]]]:
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        log.error("not an SQS event: no Records list")
        return {"batchItemFailures": []}
    downloader = build_downloader(app)
    failures: list[dict[str, str]] = []
    for record in records:
        message_id = str(record.get("messageId", "")) if isinstance(record, Mapping) else ""
        try:
            outcome = downloader.process(record, remaining_seconds=remaining_seconds)
        except Exception:
            log.exception("unexpected failure on message %s; SQS will retry it", message_id)
            outcome = None
        if (outcome is None or not outcome.disposition.acknowledged) and message_id:
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def build_downloader(app: App) -> Downloader:
    from pipeline.services.s3_transfer import S3FileTransfer

    return Downloader(
        settings=app.settings,
        provider_for=app.provider,
        state=app.state,
        sqs=app.client("sqs"),
        transfer=S3FileTransfer.from_app(app),
        metrics=app.metrics,
    )


def handler(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return process_event(
        current_app(), event, remaining_seconds=(lambda: remaining() / 1000.0) if remaining else None
    )


__all__ = ["RecordOutcome", "handler", "process_event"]
