"""Lambda entry point of the downloader: an SQS event in, a partial batch response out.

Only the records listed in `batchItemFailures` are retried by SQS; every other record of the batch is deleted.
Anything unexpected while handling one record fails that record alone (never the whole batch).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeline.app import App, current_app
from pipeline.deadline import Deadline
from pipeline.services.downloader import RecordOutcome
from pipeline.sqs_delivery import SqsDelivery

log = logging.getLogger(__name__)


def process_event(app: App, event: Any, *, deadline: Deadline | None = None) -> dict[str, list[dict[str, str]]]:
    """Each record through the downloader built by `app`; `deadline` is the invocation's (None: no limit)."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        log.error("not an SQS event: no Records list")
        return {"batchItemFailures": []}
    downloader = app.downloader()
    failures: list[dict[str, str]] = []
    for record in records:
        message_id = ""
        try:
            delivery = SqsDelivery.from_record(record)
            message_id = delivery.message_id
            outcome: RecordOutcome | None = downloader.process(delivery, deadline=deadline)
        except Exception:
            log.exception("unexpected failure on message %s; SQS will retry it", message_id)
            outcome = None
        if (outcome is None or not outcome.disposition.acknowledged) and message_id:
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def handler(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    return process_event(current_app(), event, deadline=Deadline.from_lambda_context(context))


__all__ = ["RecordOutcome", "handler", "process_event"]
