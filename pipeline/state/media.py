"""Media records: the claim, the worker's writes after it, the operator's reset (reads: `media_reads.py`).

Design choices, and why:
- **Leases, not locks.** A claim sets `lease_owner` and `lease_expires_at` (epoch seconds, a Number so conditions
  compare it numerically). A worker that crashed stops writing; once the lease expires, the next claim takes the
  medium over. Every later write by a worker (`save_checkpoint`, `complete`, `fail`, `release`) is conditional on
  it still holding the lease (`held_by(owner)`), so a worker that lost it can never overwrite its successor.
- **COMPLETED is terminal**, but for two cases: a medium recorded deleted at the source (`note=source_deleted`)
  that a listing shows again (restored from GoPro's trash) may be claimed again (`conditions.claimable`); and
  `reopen_completed`, the archive audit's repair of an object lost or damaged behind the pipeline's back, moves a
  COMPLETED record back to PENDING, only the exact record the audit checked.
- **Every medium carries `sync_timestamp`** (ISO-8601 UTC, the time of its last status change) so the sparse
  status index (`status` + `sync_timestamp`) holds every medium; run records and cursors have neither attribute and
  stay out of the index.
- **Times are passed in** (`now=`) so tests can expire a lease without sleeping; they default to the clock.
- **A refusal says why** from the item the table evaluated the condition against: no item, COMPLETED, or (short
  of that) a lease the caller lost or another worker holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pipeline.clock import iso_utc
from pipeline.state import conditions as c
from pipeline.state.expressions import Compare, Condition, Exists, Update
from pipeline.state.items import (
    epoch,
    record_from_data,
    to_json_text,
    truncate_error,
)
from pipeline.state.media_reads import MediaReads
from pipeline.state.models import (
    Attr,
    Checksum,
    ClaimOutcome,
    ClaimResult,
    MediaRecord,
    MediaStatus,
    TransitionRefusal,
    TransitionResult,
)

log = logging.getLogger(__name__)

# A checkpoint is saved at a Lambda deadline (upload id plus the parts done, ~70 bytes a part). DynamoDB items stop
# at 400 KB, so this leaves room for the rest of the record: about 4,000 parts fit. A transfer with more parts done
# must checkpoint less (the upload id alone: S3's ListParts recovers the parts); the cap makes that a clear
# ValueError here instead of a ValidationException from DynamoDB.
MAX_CHECKPOINT_BYTES = 300 * 1024
# The listing's note of a medium's live message (`mark_queued`). COMPLETED drops it (that message is done, and a
# medium recorded deleted at the source that is listed again must be queueable); FAILED keeps it, so a redriven
# message is not doubled by a listing while the first one's retention runs.
QUEUED_ATTRS = (Attr.QUEUED_AT, Attr.QUEUED_UNTIL, Attr.QUEUED_RUN_ID)


def _refusal(current: MediaRecord | None, *, by_owner: bool) -> TransitionRefusal:
    if current is None:
        return TransitionRefusal.NOT_FOUND
    if current.status is MediaStatus.COMPLETED:
        return TransitionRefusal.ALREADY_COMPLETED
    # Owner-conditioned writes fail because the caller no longer holds the lease; the other writes fail (short of
    # COMPLETED) only because a live worker holds it.
    return TransitionRefusal.LEASE_LOST if by_owner else TransitionRefusal.LEASED_ELSEWHERE


class ListingWrites(MediaReads):
    """The listing's writes (a PENDING record for every wanted medium, its message noted queued); `MediaState`
    adds the state machine's."""

    def register_pending(
        self,
        provider: str,
        media_id: str,
        *,
        run_id: str,
        filename: str | None,
        size: int | None,
        captured_at: str | None,
        media_type: str | None,
        item_count: int | None,
        listing_facts: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Record a medium the listing wants and the table has never seen as PENDING, with what its message needs,
        so a medium not queued tonight waits in the table (the next night finds it through the status index).
        A conditional put that never overwrites an existing record: False when there is one already."""
        item: dict[str, Any] = {
            Attr.PROVIDER: provider,
            Attr.MEDIA_ID: media_id,
            Attr.STATUS: MediaStatus.PENDING,
            Attr.SYNC_TIMESTAMP: iso_utc(self._now(now)),
            Attr.RUN_ID: run_id,
            Attr.ATTEMPTS: 0,
        }
        for attr, fact in (
            (Attr.FILENAME, filename),
            (Attr.SIZE, size),
            (Attr.CAPTURED_AT, captured_at),
            (Attr.MEDIA_TYPE, media_type),
            (Attr.ITEM_COUNT, item_count),
        ):
            if fact is not None:
                item[attr] = fact
        facts = {name: value for name, value in (listing_facts or {}).items() if value is not None}
        if facts:
            item[Attr.LISTING_FACTS] = json.dumps(facts, sort_keys=True)
        return self._table.put(self._key(provider, media_id), item, condition=c.key_not_exist()).applied

    def mark_queued(
        self, provider: str, media_id: str, *, run_id: str, retention_days: float, now: datetime | None = None
    ) -> bool:
        """Note that run `run_id` is sending the medium's message, kept by SQS until now + `retention_days`:
        conditional on no live message being noted already (`conditions.queueable`), so two listings (or a
        listing and its continuation) never send a second live message. The status is left as it is."""
        moment = self._now(now)
        u = Update()
        u.set(Attr.QUEUED_AT, iso_utc(moment))
        u.set(Attr.QUEUED_UNTIL, epoch(moment + timedelta(days=retention_days)))
        u.set(Attr.QUEUED_RUN_ID, run_id)
        key = self._key(provider, media_id)
        applied = self._table.update(key, u, condition=c.item_exists() & c.queueable(moment)).applied
        if not applied:
            log.info("mark_queued %s/%s refused: a live message, a worker on it, or no record", provider, media_id)
        return applied

    def unmark_queued(self, provider: str, media_id: str, *, run_id: str) -> bool:
        """Undo `mark_queued` of run `run_id` when its message could not be sent after all."""
        u = Update()
        u.remove(Attr.QUEUED_AT, Attr.QUEUED_UNTIL, Attr.QUEUED_RUN_ID)
        return self._table.update(self._key(provider, media_id), u, condition=c.queued_by(run_id)).applied


class MediaState(ListingWrites):
    """Every conditional write of media records, and the reads it inherits (see the module docstring)."""

    # --- the claim and the worker's writes ---------------------------------------------------------------------

    def claim(
        self,
        provider: str,
        media_id: str,
        *,
        owner: str,
        run_id: str,
        lease_seconds: float,
        now: datetime | None = None,
        filename: str | None = None,
        captured_at: str | None = None,
        size: int | None = None,
        final_error: str | None = None,
    ) -> ClaimResult:
        """Take the medium for `owner` for `lease_seconds`, or say why not (`conditions.claimable`).

        Increments `attempts`; keeps any multipart checkpoint for the new owner, so it can resume. `final_error`:
        the claim of a message's last receive, recorded FAILED with that reason under the lease, so a worker that
        dies before writing its outcome leaves the record agreeing with the DLQ message SQS will move; every later
        write of the worker (`complete`, `fail`, `release`, `save_checkpoint`) replaces it as usual.
        """
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        moment = self._now(now)
        expires = moment + timedelta(seconds=lease_seconds)
        u = Update()
        if final_error is not None:
            u.set(Attr.LAST_ERROR, truncate_error(final_error))
        for attr, value in (
            (Attr.STATUS, MediaStatus.IN_PROGRESS if final_error is None else MediaStatus.FAILED),
            (Attr.PROVIDER, provider),
            (Attr.MEDIA_ID, media_id),
            (Attr.RUN_ID, run_id),
            (Attr.SYNC_TIMESTAMP, iso_utc(moment)),
            (Attr.LEASE_OWNER, owner),
            (Attr.LEASE_EXPIRES_AT, epoch(expires)),
        ):
            u.set(attr, value)
        for attr, fact in ((Attr.FILENAME, filename), (Attr.CAPTURED_AT, captured_at), (Attr.SIZE, size)):
            if fact is not None:  # the listing's facts, when known
                u.set(attr, fact)
        u.increment(Attr.ATTEMPTS, step=1)
        result = self._table.update(
            self._key(provider, media_id),
            u,
            condition=c.claimable(owner, moment),
            return_new=True,
            return_old_on_refusal=True,
        )
        if result.applied:
            assert result.item is not None
            record = record_from_data(result.item)
            log.info("claimed %s/%s for %s (attempt %d)", provider, media_id, owner, record.attempts)
            return ClaimResult(ClaimOutcome.CLAIMED, record=record, lease_owner=owner, lease_expires_at=expires)
        current = record_from_data(result.item) if result.item else None
        if current is not None and current.status is MediaStatus.COMPLETED:
            log.info("claim %s/%s: already COMPLETED", provider, media_id)
            return ClaimResult(ClaimOutcome.ALREADY_COMPLETED, record=current)
        holder, until = (current.lease_owner, current.lease_expires_at) if current else (None, None)
        log.info("claim %s/%s: leased by %s until %s", provider, media_id, holder or "?", until or "?")
        return ClaimResult(
            ClaimOutcome.LEASED_ELSEWHERE, record=current, lease_owner=holder, lease_expires_at=until
        )

    def save_checkpoint(
        self,
        provider: str,
        media_id: str,
        *,
        owner: str,
        checkpoint: Mapping[str, Any],
        lease_seconds: float | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Store the multipart progress (an opaque JSON object, at most MAX_CHECKPOINT_BYTES) so a successor can
        continue the upload; optionally renews the lease in the same write."""
        u = Update()
        u.set(Attr.CHECKPOINT, to_json_text(checkpoint, MAX_CHECKPOINT_BYTES, "checkpoint"))
        if lease_seconds is not None:
            u.set(Attr.LEASE_EXPIRES_AT, epoch(self._now(now) + timedelta(seconds=lease_seconds)))
        return self._owned(provider, media_id, owner, u, "save_checkpoint")

    def complete(
        self,
        provider: str,
        media_id: str,
        *,
        owner: str,
        s3_key: str | None,
        size: int | None,
        checksum: Checksum | None,
        duration_s: float | None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Mark COMPLETED (terminal) while `owner` holds the lease; clears the lease, the checkpoint and the last
        error. For a medium deleted at the source: `s3_key=None, size=None, checksum=None, note="source_deleted"`.
        """
        u = self._status_change(MediaStatus.COMPLETED, now)
        u.set_or_remove(Attr.S3_KEY, s3_key)
        u.set_or_remove(Attr.SIZE, size)
        u.set_or_remove(Attr.CHECKSUM_ALGORITHM, checksum.algorithm if checksum else None)
        u.set_or_remove(Attr.CHECKSUM_VALUE, checksum.value if checksum else None)
        u.set_or_remove(Attr.DURATION_S, duration_s)
        u.set_or_remove(Attr.NOTE, note)
        u.remove(Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT, Attr.CHECKPOINT, Attr.LAST_ERROR, *QUEUED_ATTRS)
        return self._owned(provider, media_id, owner, u, "complete")

    def fail(
        self,
        provider: str,
        media_id: str,
        *,
        owner: str,
        error: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Mark FAILED with `error` (truncated to MAX_ERROR_CHARS; keeping secrets out is the caller's job).

        Used on the message's last receive, just before SQS moves it to the DLQ. The checkpoint is dropped: the
        caller aborts a multipart upload it gives up on.
        """
        u = self._status_change(MediaStatus.FAILED, now)
        u.set(Attr.LAST_ERROR, truncate_error(error))
        u.set_or_remove(Attr.NOTE, note)
        u.remove(Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT, Attr.CHECKPOINT)
        return self._owned(provider, media_id, owner, u, "fail")

    def fail_unclaimed(
        self, provider: str, media_id: str, *, owner: str, run_id: str, error: str, now: datetime | None = None
    ) -> TransitionResult:
        """Mark FAILED without holding the lease, where a claim by `owner` would have applied: no record, PENDING,
        FAILED, IN_PROGRESS with an expired lease, or `owner`'s own lease. Never touches COMPLETED
        (ALREADY_COMPLETED) or a medium another live worker holds (LEASED_ELSEWHERE).

        For a message on its last receive whose claim itself could not be written (throttling that outlasted the
        retries): without this its message reaches the DLQ while the record still says PENDING, and the medium is
        missing from the FAILED list the report and the operator read. Any multipart checkpoint is kept, so the
        next attempt (a redrive, a later night) resumes it.
        """
        moment = self._now(now)
        u = self._status_change(MediaStatus.FAILED, moment)
        u.set(Attr.PROVIDER, provider)
        u.set(Attr.MEDIA_ID, media_id)
        u.set(Attr.RUN_ID, run_id)
        u.set(Attr.LAST_ERROR, truncate_error(error))
        u.increment(Attr.ATTEMPTS, step=0)
        u.remove(Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT)
        condition = c.key_not_exist() | c.reopenable(moment) | c.owned_by(owner)
        return self._transition(provider, media_id, u, condition, "fail_unclaimed", by_owner=False)

    def release(
        self,
        provider: str,
        media_id: str,
        *,
        owner: str,
        error: str | None = None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Give the medium back (PENDING) so SQS's redelivery can claim it at once, keeping the checkpoint.

        `note` replaces the record's note (None removes it): `not_found` keeps the evidence of a 404 for the
        next attempt, which confirms a deletion only if it sees another (`Downloader`)."""
        u = self._status_change(MediaStatus.PENDING, now)
        u.set_or_remove(Attr.NOTE, note)
        if error is not None:
            u.set(Attr.LAST_ERROR, truncate_error(error))
        u.remove(Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT)
        return self._owned(provider, media_id, owner, u, "release")

    def reset_to_pending(
        self, provider: str, media_id: str, *, now: datetime | None = None, completed_too: bool = False
    ) -> TransitionResult:
        """Put an existing FAILED (or stuck, lease-expired) medium back to PENDING, e.g. when its DLQ message is
        redriven. Refuses COMPLETED media (unless `completed_too`: an operator archiving it again on purpose,
        `enqueue_media.py --force`), media a live worker holds, and media with no record (NOT_FOUND)."""
        moment = self._now(now)
        u = self._status_change(MediaStatus.PENDING, moment)
        u.remove(Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT)
        reopenable = c.reopenable(moment)
        if completed_too:
            reopenable = reopenable | c.status_in(MediaStatus.COMPLETED)
        condition = c.item_exists() & reopenable
        return self._transition(provider, media_id, u, condition, "reset_to_pending", by_owner=False)

    def retry_failed(
        self, provider: str, media_id: str, *, failed_before: datetime, now: datetime | None = None
    ) -> TransitionResult:
        """Put a medium FAILED since before `failed_before` back to PENDING for a full night to queue it again:
        its DLQ message has outlived the DLQ's retention, so no redrive can bring it back any more. The old
        queued mark goes too (that message is long gone), so a night that leaves it waiting does not count it as
        an expired message."""
        moment = self._now(now)
        u = self._status_change(MediaStatus.PENDING, moment)
        u.remove(Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT, Attr.QUEUED_AT, Attr.QUEUED_UNTIL, Attr.QUEUED_RUN_ID)
        condition = c.failed_since_before(failed_before, moment)
        return self._transition(provider, media_id, u, condition, "retry_failed", by_owner=False)

    def reopen_completed(
        self,
        provider: str,
        media_id: str,
        *,
        checksum_value: str | None,
        reason: str,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Put a COMPLETED medium whose archived bytes the audit found missing or wrong back to PENDING, so a
        delivery archives it again (a claim refuses COMPLETED). Conditional on the record still holding the
        checksum the audit compared against (`None`: a record without one, as a medium recorded deleted at the
        source), so a medium archived again meanwhile is left alone; the reason is kept as `last_error`, and the
        stale key, checksum and note are dropped (nothing vouches for them any more)."""
        u = self._status_change(MediaStatus.PENDING, now)
        u.set(Attr.LAST_ERROR, truncate_error(reason))
        u.remove(Attr.S3_KEY, Attr.CHECKSUM_ALGORITHM, Attr.CHECKSUM_VALUE, Attr.NOTE)
        same = (
            Exists(Attr.CHECKSUM_VALUE, present=False)
            if checksum_value is None
            else Compare(Attr.CHECKSUM_VALUE, "=", checksum_value)
        )
        condition = c.status_in(MediaStatus.COMPLETED) & same
        return self._transition(provider, media_id, u, condition, "reopen_completed", by_owner=False)

    def _status_change(self, status: MediaStatus, now: datetime | None) -> Update:
        u = Update()
        u.set(Attr.STATUS, status)
        u.set(Attr.SYNC_TIMESTAMP, iso_utc(self._now(now)))
        return u

    def _owned(self, provider: str, media_id: str, owner: str, u: Update, what: str) -> TransitionResult:
        return self._transition(provider, media_id, u, c.held_by(owner), what, by_owner=True)

    def _transition(
        self, provider: str, media_id: str, u: Update, condition: Condition, what: str, *, by_owner: bool
    ) -> TransitionResult:
        """Apply `u` under `condition`; a refusal is answered with its reason and the item as it was."""
        result = self._table.update(
            self._key(provider, media_id), u, condition=condition, return_old_on_refusal=True
        )
        if result.applied:
            log.debug("%s %s/%s applied", what, provider, media_id)
            return TransitionResult(applied=True)
        current = record_from_data(result.item) if result.item else None
        refusal = _refusal(current, by_owner=by_owner)
        # A lost lease is worth a warning (a worker was too slow or a clock is off); the other refusals are the
        # normal answers of an idempotent pipeline (already COMPLETED, someone else is on it).
        level = logging.WARNING if refusal is TransitionRefusal.LEASE_LOST else logging.INFO
        log.log(level, "%s %s/%s refused: %s", what, provider, media_id, refusal.value)
        return TransitionResult(applied=False, refusal=refusal, current=current)
