"""The named sub-conditions every conditional write of the state table is joined from.

Why named (as Powertools' idempotency layer names `key_not_exist`, `expired`, `inprogress_expired`): a write's
rule then reads as a sentence (`key_not_exist | reopenable(now) | owned_by(owner)`), each part is defined once,
and both backends evaluate the same objects (see `pipeline.state.expressions`).

Lease times are stored as epoch seconds (a Number, so conditions compare them numerically); see `items.epoch`.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.clock import iso_utc
from pipeline.state.expressions import Compare, Condition, Exists, In, Named
from pipeline.state.items import epoch
from pipeline.state.models import NOTE_SOURCE_DELETED, Attr, MediaStatus


def key_not_exist() -> Condition:
    return Named("key_not_exist", Exists(Attr.PK, present=False))


def item_exists() -> Condition:
    return Named("item_exists", Exists(Attr.PK))


def status_in(*statuses: MediaStatus) -> Condition:
    if len(statuses) == 1:
        return Named(f"status_is_{statuses[0].value}", Compare(Attr.STATUS, "=", statuses[0]))
    return Named("status_in", In(Attr.STATUS, statuses))


def owned_by(owner: str) -> Condition:
    """`owner` is the lease owner (whatever the status: COMPLETED and FAILED records hold no lease)."""
    return Named("owned_by", Compare(Attr.LEASE_OWNER, "=", owner))


def lease_expired(now: datetime) -> Condition:
    """No live lease: none was set, or it ran out at or before `now` (its worker crashed or gave up)."""
    return Named(
        "lease_expired",
        Exists(Attr.LEASE_EXPIRES_AT, present=False) | Compare(Attr.LEASE_EXPIRES_AT, "<=", epoch(now)),
    )


def in_progress_expired(now: datetime) -> Condition:
    return Named("in_progress_expired", status_in(MediaStatus.IN_PROGRESS) & lease_expired(now))


def reopenable(now: datetime) -> Condition:
    """What the lister or an operator may put back: PENDING, FAILED, or IN_PROGRESS with an expired lease. A
    FAILED record with a live lease is a worker on its message's last receive (see `held_by`): left alone."""
    leased_states = status_in(MediaStatus.IN_PROGRESS, MediaStatus.FAILED) & lease_expired(now)
    return Named("reopenable", status_in(MediaStatus.PENDING) | leased_states)


def held_by(owner: str) -> Condition:
    """`owner` still holds the medium: the condition of every write a worker makes after its claim. The status is
    IN_PROGRESS, or FAILED for a claim made on the message's last receive (recorded FAILED up front, so a worker
    that dies there leaves a record that agrees with its DLQ message); FAILED records hold no lease otherwise."""
    return Named("held_by", status_in(MediaStatus.IN_PROGRESS, MediaStatus.FAILED) & owned_by(owner))


def deleted_at_source() -> Condition:
    """COMPLETED only because the source deleted it: a listing that shows the medium again brings it back."""
    return Named(
        "deleted_at_source",
        status_in(MediaStatus.COMPLETED) & Compare(Attr.NOTE, "=", NOTE_SOURCE_DELETED),
    )


def claimable(owner: str, now: datetime) -> Condition:
    """No item, PENDING, IN_PROGRESS / FAILED whose lease expired (or was never set: an ordinary FAILED) or is
    `owner`'s own (a fresh invocation for the same message resuming its work), or recorded deleted at the source
    (listed again: restored)."""
    leased = status_in(MediaStatus.IN_PROGRESS, MediaStatus.FAILED) & (lease_expired(now) | owned_by(owner))
    return Named("claimable", key_not_exist() | status_in(MediaStatus.PENDING) | leased | deleted_at_source())


def failed_since_before(cutoff: datetime, now: datetime) -> Condition:
    """FAILED (no worker on its last receive) since before `cutoff`: `sync_timestamp`, the ISO time of the last
    status change, sorts as the time it spells."""
    return Named(
        "failed_since_before",
        status_in(MediaStatus.FAILED) & lease_expired(now) & Compare(Attr.SYNC_TIMESTAMP, "<", iso_utc(cutoff)),
    )


def not_queued_live(now: datetime) -> Condition:
    """No message the listing sent may still be in the queue: none was sent, or its retention ran out by `now`."""
    return Named(
        "not_queued_live",
        Exists(Attr.QUEUED_UNTIL, present=False) | Compare(Attr.QUEUED_UNTIL, "<=", epoch(now)),
    )


def queueable(now: datetime) -> Condition:
    """What the listing may send a message for: PENDING (or recorded deleted at the source and listed again)
    without a live message, or IN_PROGRESS past its lease (its worker died; `list_abandoned`)."""
    waiting = status_in(MediaStatus.PENDING) | deleted_at_source()
    return Named("queueable", (waiting & not_queued_live(now)) | in_progress_expired(now))


def queued_by(run_id: str) -> Condition:
    return Named("queued_by", Compare(Attr.QUEUED_RUN_ID, "=", run_id))


# --- run records ------------------------------------------------------------------------------------------------


def report_not_sent() -> Condition:
    return Named("report_not_sent", Exists(Attr.REPORT_SENT_AT, present=False))


def report_unclaimed_or_stale(stale_before: str) -> Condition:
    """No claim on the report, or one made before `stale_before` (ISO text: its summary died)."""
    return Named(
        "report_unclaimed_or_stale",
        Exists(Attr.REPORT_CLAIMED_AT, present=False) | Compare(Attr.REPORT_CLAIMED_AT, "<", stale_before),
    )


def not_later_run_than(started_at: str, run_id: str) -> Condition:
    """The pointer names no run later than (`started_at`, `run_id`), or there is no pointer yet."""
    same_start = Compare(Attr.STARTED_AT, "=", started_at) & Compare(Attr.RUN_ID, "<=", run_id)
    return Named(
        "not_later_run_than",
        key_not_exist() | Compare(Attr.STARTED_AT, "<", started_at) | same_start,
    )
