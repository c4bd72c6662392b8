"""What a provider's archive holds so far: how many media are archived and their size, for the run report.

Why a paginated status-index Query rather than a total kept up to date by the downloaders: the Query is exact by
construction (it reads what the records say), needs no back-fill for media archived before it existed, and no
second write beside each `complete` that a crash between the two would leave out of step; a redrive or a medium
brought back from the trash moves it too. Its cost is one read of the COMPLETED part of the index, projected to
the size (about 0.5 read units per 4 KB: some 40 read units for 10,000 media), once per report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pipeline.state.backend import Table
from pipeline.state.expressions import Compare, Exists
from pipeline.state.models import NOTE_SOURCE_DELETED, Attr, MediaStatus


@dataclass(frozen=True)
class ArchiveTotal:
    media: int
    bytes: int


class ArchiveTotals:
    def __init__(self, table: Table, now: Callable[[datetime | None], datetime]) -> None:
        self._table = table
        self._now = now

    def archived(self, provider: str) -> ArchiveTotal:
        """Every COMPLETED medium of `provider` with its files in the archive (those recorded deleted at the
        source left out) and the sum of their recorded sizes."""
        kept = Exists(Attr.NOTE, present=False) | Compare(Attr.NOTE, "<>", NOTE_SOURCE_DELETED)
        where = Compare(Attr.PROVIDER, "=", provider) & kept
        count, total = self._table.sum_status(MediaStatus.COMPLETED.value, Attr.SIZE, where=where)
        return ArchiveTotal(count, total)
