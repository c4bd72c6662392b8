"""Media records, read: one record, a page's records at once, and the status index (counts, lists, leases run out).

Why apart from the writes (`media.py`): the reads are what the listing, the summary, the scripts and the audit
need; the conditional writes are the state machine. Both work over the same `Table` backend (DynamoDB or memory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from pipeline import resources
from pipeline.state.backend import Table
from pipeline.state.expressions import All, Compare, Condition
from pipeline.state.items import LISTER_PROJECTION, record_from_data
from pipeline.state.models import Attr, MediaRecord, MediaStatus


class MediaReads:
    """The reads of media records; `MediaState` adds the writes."""

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

    def list_abandoned(
        self, limit: int = 1000, *, provider: str | None = None, now: datetime | None = None
    ) -> list[MediaRecord]:
        """IN_PROGRESS media whose lease ran out (their worker died, and nothing may bring a message back), oldest
        first: what the listing re-enqueues every night, whatever its mode. Through the status index (no scan);
        the lease is compared here, against the store's clock."""
        moment = self._now(now)
        records = self.list_by_status(MediaStatus.IN_PROGRESS, limit, provider=provider)
        return [r for r in records if r.lease_expires_at is None or r.lease_expires_at <= moment]

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
