"""What became of one SQS record in the downloader, and what the handler reports back to SQS.

Beside the service rather than in it: the handler, the local runtime and the chaos suite read outcomes without
needing the service's collaborators.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
