"""Media records: the claim, the worker's writes after it, the operator's reset, and the status index reads.

Design choices, and why:
- **Leases, not locks.** A claim sets `lease_owner` and `lease_expires_at` (epoch seconds, a Number so conditions
  compare it numerically). A worker that crashed stops writing; once the lease expires, the next claim takes the
  medium over. Every later write by a worker (`save_checkpoint`, `complete`, `fail`, `release`) is conditional on
  it still holding the lease (`held_by(owner)`), so a worker that lost it can never overwrite its successor.
- **COMPLETED is terminal.** No method here moves a COMPLETED record anywhere else.
- **Every medium carries `sync_timestamp`** (ISO-8601 UTC, the time of its last status change) so the sparse
  status index (`status` + `sync_timestamp`) holds every medium; run records and cursors have neither attribute and
  stay out of the index.
- **Times are passed in** (`now=`) so tests can expire a lease without sleeping; they default to the clock.
- **A refusal says why** from the item the table evaluated the condition against: no item, COMPLETED, or (short
  of that) a lease the caller lost or another worker holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pipeline import resources
from pipeline.clock import iso_utc
from pipeline.state import conditions as c
from pipeline.state.backend import Table
from pipeline.state.expressions import All, Compare, Condition, Update
from pipeline.state.items import (
    LISTER_PROJECTION,
    epoch,
    record_from_data,
    to_json_text,
    truncate_error,
)
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


def _refusal(current: MediaRecord | None, *, by_owner: bool) -> TransitionRefusal:
    if current is None:
        return TransitionRefusal.NOT_FOUND
    if current.status is MediaStatus.COMPLETED:
        return TransitionRefusal.ALREADY_COMPLETED
    # Owner-conditioned writes fail because the caller no longer holds the lease; the other writes fail (short of
    # COMPLETED) only because a live worker holds it.
    return TransitionRefusal.LEASE_LOST if by_owner else TransitionRefusal.LEASED_ELSEWHERE


class MediaState:
    """Every read and conditional write of media records (see the module docstring)."""

    def __init__(self, table: Table, now: Callable[[datetime | None], datetime]) -> None:
        self._table = table
        self._now = now

    @staticmethod
    def _key(provider: str, media_id: str) -> str:
        return resources.media_key(provider, media_id)

    # --- reads -------------------------------------------------------------------------------------------------

    def get(self, provider: str, media_id: str, *, consistent: bool = True) -> MediaRecord | None:
        item = self._table.get(self._key(provider, media_id), consistent=consistent)
        return record_from_data(item) if item else None

    def batch_get(
        self, provider: str, media_ids: Iterable[str], *, consistent: bool = False
    ) -> dict[str, MediaRecord]:
        """Records for the media that have one (absent ids are simply missing from the result).

        Projected to `LISTER_PROJECTION` (other MediaRecord fields are None). The DynamoDB backend asks 100 keys a
        call and retries UnprocessedKeys, raising UnprocessedKeysError rather than silently treating those media
        as new. Eventually consistent by default: a medium that completed a moment ago may still read IN_PROGRESS
        and be enqueued again, which the downloader's claim absorbs.
        """
        keys = [self._key(provider, media_id) for media_id in media_ids]
        items = self._table.batch_get(keys, projection=LISTER_PROJECTION, consistent=consistent)
        records = (record_from_data(item) for item in items)
        return {record.media_id: record for record in records}

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
    ) -> ClaimResult:
        """Take the medium for `owner` for `lease_seconds`, or say why not (`conditions.claimable`).

        Increments `attempts`; keeps any multipart checkpoint for the new owner, so it can resume.
        """
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        moment = self._now(now)
        expires = moment + timedelta(seconds=lease_seconds)
        u = Update()
        for attr, value in (
            (Attr.STATUS, MediaStatus.IN_PROGRESS),
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
        u.remove(Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT, Attr.CHECKPOINT, Attr.LAST_ERROR)
        return self._owned(provider, media_id, owner, u, "complete")

    def fail(
        self, provider: str, media_id: str, *, owner: str, error: str, now: datetime | None = None
    ) -> TransitionResult:
        """Mark FAILED with `error` (truncated to MAX_ERROR_CHARS; keeping secrets out is the caller's job).

        Used on the message's last receive, just before SQS moves it to the DLQ. The checkpoint is dropped: the
        caller aborts a multipart upload it gives up on.
        """
        u = self._status_change(MediaStatus.FAILED, now)
        u.set(Attr.LAST_ERROR, truncate_error(error))
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
        self, provider: str, media_id: str, *, owner: str, error: str | None = None, now: datetime | None = None
    ) -> TransitionResult:
        """Give the medium back (PENDING) so SQS's redelivery can claim it at once, keeping the checkpoint."""
        u = self._status_change(MediaStatus.PENDING, now)
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

    # --- the status index --------------------------------------------------------------------------------------

    @staticmethod
    def _where(provider: str | None, run_id: str | None) -> Condition | None:
        wanted = [
            (attr, value)
            for attr, value in ((Attr.PROVIDER, provider), (Attr.RUN_ID, run_id))
            if value is not None
        ]
        parts = tuple(Compare(attr, "=", value) for attr, value in wanted)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else All(parts)

    def count_by_status(self, *, provider: str | None = None, run_id: str | None = None) -> dict[MediaStatus, int]:
        """How many media are in each status (optionally of one provider / last touched by one run), through the
        status index: one paginated `Select=COUNT` Query per status, never a table scan. The index is eventually
        consistent, so a count can lag a write by a moment."""
        where = self._where(provider, run_id)
        return {status: self._table.count_status(status.value, where=where) for status in MediaStatus}

    def list_by_status(
        self,
        status: MediaStatus,
        limit: int = 100,
        *,
        provider: str | None = None,
        run_id: str | None = None,
        oldest_first: bool = True,
    ) -> list[MediaRecord]:
        """Up to `limit` media in `status`, ordered by `sync_timestamp` (time in that status)."""
        if limit <= 0:
            return []
        items = self._table.query_status(
            MediaStatus(status).value, where=self._where(provider, run_id), oldest_first=oldest_first, limit=limit
        )
        return [record_from_data(item) for item in items]
