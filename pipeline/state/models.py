"""What the state store hands out: media records, run records and the typed outcomes of conditional writes.

Why typed outcomes instead of exceptions: a refused conditional write ("already COMPLETED", "another worker holds
the lease") is a normal answer the caller branches on, not a failure to retry. Only infrastructure problems
(throttling that outlasted botocore's retries, a missing table) surface as exceptions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline import resources
from pipeline.errors import SyncError
from pipeline.transfer.checksums import Checksum  # the one checksum type: what the transfer verified


class MediaStatus(enum.StrEnum):
    """States of one medium. Transitions (see `pipeline.state.media`):

    (none) -> IN_PROGRESS (claim) -> COMPLETED (terminal)
                                  -> FAILED (last receive) -> PENDING (redrive) / IN_PROGRESS (next run's claim)
                                  -> PENDING (release: SQS will redeliver)
    (none) -> FAILED (`fail_unclaimed`: the last receive could not even claim)
    A claim starts from nothing, PENDING, FAILED, or an IN_PROGRESS whose lease expired (a crashed worker).
    """

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Attr:
    """Item attribute names. Scripts and tests read records through `StateStore`, never through these directly,
    but the names are the table's contract (the CDK stack only declares the key and index attributes)."""

    PK = resources.TABLE_PARTITION_KEY
    PROVIDER = "provider"
    MEDIA_ID = "media_id"
    STATUS = resources.STATUS_INDEX_PARTITION_KEY
    S3_KEY = "s3_key"
    SIZE = "size"
    CHECKSUM_ALGORITHM = "checksum_algorithm"
    CHECKSUM_VALUE = "checksum_value"
    SYNC_TIMESTAMP = resources.STATUS_INDEX_SORT_KEY
    RUN_ID = "run_id"
    ATTEMPTS = "attempts"
    LAST_ERROR = "last_error"
    NOTE = "note"
    LEASE_OWNER = "lease_owner"
    LEASE_EXPIRES_AT = "lease_expires_at"
    FILENAME = "filename"
    CAPTURED_AT = "captured_at"
    DURATION_S = "duration_s"
    CHECKPOINT = "checkpoint"
    MEDIA_TYPE = "media_type"
    ITEM_COUNT = "item_count"
    # The medium's message: when the listing sent it, until when SQS keeps it (epoch seconds, a Number so a
    # condition compares it), and which run sent it (pipeline.services.backlog).
    QUEUED_AT = "queued_at"
    QUEUED_UNTIL = "queued_until"
    QUEUED_RUN_ID = "queued_run_id"
    # What the listing said of the medium beyond the message's basics (camera, title, duration, ...): JSON text,
    # carried to its message and from there to its sidecar (`MediaItem.sidecar_facts`).
    LISTING_FACTS = "listing_facts"
    # Run records
    CORRELATION_ID = "correlation_id"
    STARTED_AT = "started_at"
    LISTER_ERROR = "lister_error"
    LISTING_DONE = "listing_done"
    LISTING_DONE_AT = "listing_done_at"
    LISTING_NOTES = "listing_notes"  # JSON: what the listing tells the report (pipeline.services.listing_notes)
    REPORT_CLAIMED_AT = "report_claimed_at"
    REPORT_SENT_AT = "report_sent_at"
    CONTENT_HOSTS = "content_hosts"  # a string set: the hosts the run's download links pointed to
    # A string set: media this run found leased by another run's worker (finished when their record is)
    LEASED_ELSEWHERE_IDS = "leased_elsewhere_ids"
    UNREPORTED = "unreported"  # on `unreported-runs#<provider>`: a string set of the runs not reported yet
    # Cursors
    CURSOR = "cursor"
    UPDATED_AT = "updated_at"


NOTE_SOURCE_DELETED = "source_deleted"
# A 404 seen on an attempt that did not confirm the deletion: the next 404 plus a listing without the medium do.
NOTE_NOT_FOUND = "not_found"


@dataclass(frozen=True)
class MediaRecord:
    """One medium's state. `sync_timestamp` is the ISO-8601 UTC time of the last status change (every media item
    has one, so the sparse status index holds every medium, ordered by how long it has been in its status).

    Records returned by `batch_get` carry only the lister's projection; the other fields are None there.
    """

    provider: str
    media_id: str
    status: MediaStatus
    sync_timestamp: str | None = None
    run_id: str | None = None
    attempts: int = 0
    s3_key: str | None = None
    size: int | None = None
    checksum: Checksum | None = None
    last_error: str | None = None
    note: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    filename: str | None = None
    captured_at: str | None = None
    duration_s: float | None = None
    checkpoint: dict[str, Any] | None = None
    media_type: str | None = None
    item_count: int | None = None
    listing_facts: dict[str, Any] | None = None
    queued_at: str | None = None
    queued_until: datetime | None = None
    queued_run_id: str | None = None

    @property
    def archived(self) -> bool:
        """COMPLETED with its files in the archive. A medium recorded deleted at the source is COMPLETED too, but
        a listing that shows it again (restored from GoPro's trash) brings it back: it is not archived."""
        return self.status is MediaStatus.COMPLETED and self.note != NOTE_SOURCE_DELETED

    def queued_live(self, now: datetime) -> bool:
        """True while the message the listing sent for this medium may still be in the queue (`queued_until`, the
        queue's retention after the send, is in the future)."""
        return self.queued_until is not None and self.queued_until > now

    def message_expired(self, now: datetime) -> bool:
        """PENDING past its message's retention: the message expired unprocessed (a worker that took it would
        have moved the record on), so the medium waits to be queued again."""
        return self.status is MediaStatus.PENDING and self.queued_until is not None and self.queued_until <= now

    def lease_live(self, now: datetime) -> bool:
        """True while an IN_PROGRESS record's lease has not expired."""
        return (
            self.status is MediaStatus.IN_PROGRESS
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


class ClaimOutcome(enum.StrEnum):
    CLAIMED = "claimed"
    ALREADY_COMPLETED = "already_completed"
    LEASED_ELSEWHERE = "leased_elsewhere"


@dataclass(frozen=True)
class ClaimResult:
    """The answer to `store.media.claim`.

    CLAIMED: `record` is the item after the claim (attempts incremented; any multipart `checkpoint` a previous
    worker left is still there so the new owner can resume). ALREADY_COMPLETED: `record` is the completed item.
    LEASED_ELSEWHERE: `lease_owner` / `lease_expires_at` say who holds it and until when.
    """

    outcome: ClaimOutcome
    record: MediaRecord | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None

    @property
    def claimed(self) -> bool:
        return self.outcome is ClaimOutcome.CLAIMED

    def __bool__(self) -> bool:
        return self.claimed


class TransitionRefusal(enum.StrEnum):
    """Why a conditional state change did not apply."""

    NOT_FOUND = "not_found"
    ALREADY_COMPLETED = "already_completed"
    LEASE_LOST = "lease_lost"  # the record is not IN_PROGRESS under this owner any more
    LEASED_ELSEWHERE = "leased_elsewhere"  # another worker holds a live lease (reset_to_pending, fail_unclaimed)


@dataclass(frozen=True)
class TransitionResult:
    """The answer to `complete`, `fail`, `fail_unclaimed`, `release`, `save_checkpoint` and `reset_to_pending`.
    Truthy when the write applied; otherwise `refusal` says why and `current` is the item as the table had it
    when it refused (None if there was no item)."""

    applied: bool
    refusal: TransitionRefusal | None = None
    current: MediaRecord | None = None

    def __bool__(self) -> bool:
        return self.applied


@dataclass(frozen=True)
class RunRecord:
    """One nightly run. Counters are totals of the increments every writer made through `store.runs.update`."""

    run_id: str
    provider: str
    correlation_id: str
    started_at: str
    listed: int = 0
    enqueued: int = 0
    skipped: int = 0
    already_archived: int = 0  # listed tonight and archived on an earlier night (the listing counts them)
    synced: int = 0
    failed: int = 0
    source_deleted: int = 0
    retried: int = 0  # deliveries that failed and were handed back to SQS for another try
    # Deliveries that found the medium COMPLETED by another run's worker: finished, archived by someone else.
    duplicates: int = 0
    # Deliveries that found another run's worker holding the medium: finished only when its record is (the ids
    # are kept in `leased_elsewhere_ids`, bounded, and looked up when reporting).
    leased_elsewhere: int = 0
    # Deliveries of this run's own message that found this run's own worker done or at it (SQS delivered twice):
    # the medium's outcome is counted by that worker, so these are outside the report's arithmetic.
    redelivered: int = 0
    poison: int = 0  # unreadable messages that still named this run (dead-lettered at once)
    bytes_transferred: int = 0
    transfer_seconds: float = 0.0
    lister_error: str | None = None
    listing_done: bool = False
    listing_done_at: str | None = None
    listing_notes: str | None = None
    report_claimed_at: str | None = None
    report_sent_at: str | None = None
    # The hosts the run's download links pointed to, sorted (at most `runs.MAX_CONTENT_HOSTS`): what an operator
    # pins in ALLOWED_DOWNLOAD_HOSTS.
    content_hosts: tuple[str, ...] = ()
    leased_elsewhere_ids: tuple[str, ...] = ()


# Counters `store.runs.update` adds to atomically (ADD), in the order they appear on a report.
RUN_COUNTERS: tuple[str, ...] = (
    "listed",
    "enqueued",
    "skipped",
    "already_archived",
    "synced",
    "failed",
    "source_deleted",
    "retried",
    "duplicates",
    "leased_elsewhere",
    "redelivered",
    "poison",
    "bytes_transferred",
    "transfer_seconds",
)


class StateStoreError(SyncError):
    """The state store could not do what was asked for a reason other than a refused condition."""


class UnprocessedKeysError(StateStoreError):
    """BatchGetItem still left keys unprocessed after the bounded retries (sustained throttling)."""

    transient = True

    def __init__(self, unprocessed: int, attempts: int) -> None:
        super().__init__(f"{unprocessed} keys still unprocessed after {attempts} BatchGetItem attempts")
        self.unprocessed = unprocessed
        self.attempts = attempts
