"""The lister's saved position per provider (page, high-water mark, last full reconcile): one item each.

Stored as JSON text rather than a DynamoDB map so any JSON object round-trips unchanged (numbers stay ints,
nulls stay nulls) and its size is checked before the write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pipeline import resources
from pipeline.clock import iso_utc
from pipeline.state.backend import Table
from pipeline.state.items import from_json_text, to_json_text
from pipeline.state.models import Attr

MAX_CURSOR_BYTES = 64 * 1024


class CursorState:
    def __init__(self, table: Table, now: Callable[[datetime | None], datetime]) -> None:
        self._table = table
        self._now = now

    def get(self, provider: str) -> dict[str, Any] | None:
        """The lister's saved position for `provider` (the dict last given to `put`), or None."""
        item = self._table.get(resources.cursor_key(provider), consistent=True)
        return from_json_text(item.get(Attr.CURSOR)) if item else None

    def put(self, provider: str, cursor: Mapping[str, Any], *, now: datetime | None = None) -> None:
        """Save the lister's position (any JSON object, e.g. page, high_water_mark, last_full_reconcile_at)."""
        item = {
            Attr.PROVIDER: provider,
            Attr.CURSOR: to_json_text(cursor, MAX_CURSOR_BYTES, "cursor"),
            Attr.UPDATED_AT: iso_utc(self._now(now)),
        }
        self._table.put(resources.cursor_key(provider), item)
