"""What became of one SQS record in the downloader, and what the handler reports back to SQS.

Beside the service rather than in it: the handler, the local runtime and the chaos suite read outcomes without
needing the service's collaborators.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipeline.messages import DownloadMessage
from pipeline.state import MediaRecord

log = logging.getLogger(__name__)


class Disposition(StrEnum):
    """What became of one SQS record."""

    SYNCED = "synced"
    ALREADY_DONE = "already_done"
    SOURCE_DELETED = "source_deleted"
    LEASED_ELSEWHERE = "leased_elsewhere"
    POISON = "poison"
    CONTINUED = "continued"
    DEAD_LETTERED = "dead_lettered"  # a permanent failure: recorded FAILED, sent to the DLQ with its reason, acked
    RETRY = "retry"  # reported in batchItemFailures: SQS redelivers it
    FAILED = "failed"  # last receive: recorded FAILED, SQS moves the message to the DLQ

    @property
    def acknowledged(self) -> bool:
        return self not in (Disposition.RETRY, Disposition.FAILED)


@dataclass(frozen=True)
class RecordOutcome:
    message_id: str
    disposition: Disposition
    media_id: str | None = None
    error: str | None = None


def duplicate_counters(message: DownloadMessage, current: MediaRecord | None, *, done: bool) -> dict[str, Any]:
    """The run counters of a delivery that found its medium COMPLETED (`done`) or held by a live worker.

    `current.run_id` names the run whose worker claimed the medium last. When it is the message's own run, that
    worker counts the medium's outcome in this run: this delivery is a second copy of the message (`redelivered`,
    outside the report's arithmetic). Otherwise the medium is another run's: finished here when COMPLETED
    (`duplicates`), or finished only once its record is (`leased_elsewhere`, its id kept for the report).
    """
    if current is not None and current.run_id == message.run_id:
        return {"redelivered": 1}
    if done:
        return {"duplicates": 1}
    return {"leased_elsewhere": 1, "leased_elsewhere_id": message.media_id}


def poison_run_id(body: Any) -> str | None:
    """The run an unreadable message still names (a JSON object with a string `run_id`), else None."""
    if not isinstance(body, str):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # hostile bodies: not JSON, or nested deeper than the parser goes
        return None
    run_id = document.get("run_id") if isinstance(document, dict) else None
    return run_id if isinstance(run_id, str) and 0 < len(run_id) <= 100 else None


def duplicate(
    add_to_run: Callable[..., None],
    message: DownloadMessage,
    message_id: str,
    current: MediaRecord | None,
    *,
    done: bool,
) -> RecordOutcome:
    """A delivery that found its medium COMPLETED (`done`) or held by a live worker: counted in its run
    (`duplicate_counters`) through `add_to_run` (the downloader's retried counter write), then acknowledged."""
    add_to_run(message.run_id, **duplicate_counters(message, current, done=done))
    disposition = Disposition.ALREADY_DONE if done else Disposition.LEASED_ELSEWHERE
    return RecordOutcome(message_id, disposition, message.media_id)


def count_poison(add_to_run: Callable[..., None], body: Any) -> None:
    """An unreadable message is still counted in its run when it names one (a stray id creates no run)."""
    run_id = poison_run_id(body)
    if run_id is None:
        return
    try:
        add_to_run(run_id, poison=1)
    except Exception as exc:  # a figure of the report; the message is in the DLQ already and must be acknowledged
        log.warning("could not count an unreadable message in run %r: %s", run_id[:100], type(exc).__name__)
