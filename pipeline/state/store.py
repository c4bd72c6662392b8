"""`StateStore`: the media, run and cursor records of one state table, over DynamoDB or in memory.

Why an aggregate of three small classes: each record kind has its own rules (leases for media, atomic counters
and an exactly-once report claim for runs, a plain overwrite for cursors) but they share one table, one client
and one clock. Callers hold one `StateStore` and say which kind they mean: `store.media.claim(...)`,
`store.runs.update(...)`, `store.cursors.get(...)`. The design of each lives in its module's docstring
(`media`, `runs`, `cursors`); the DynamoDB plumbing in `dynamo`; the in-memory twin in `memory`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pipeline.clock import utc_now
from pipeline.config import Settings
from pipeline.retry import RetryPolicy
from pipeline.state.archive_totals import ArchiveTotals
from pipeline.state.backend import Table
from pipeline.state.cursors import CursorState
from pipeline.state.dynamo import DynamoTable
from pipeline.state.items import aware_utc
from pipeline.state.media import MediaState
from pipeline.state.memory import MemoryTable
from pipeline.state.runs import RunState


class StateStore:
    """Media, runs and cursors over one state table.

    `StateStore(client, table_name)` is the DynamoDB store (constructing it makes no call); `in_memory()` is the
    same store over a `MemoryTable` for unit tests. `clock` supplies "now" for every write not given `now=`.
    """

    def __init__(
        self,
        client: Any = None,
        table_name: str = "",
        unprocessed_retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        *,
        table: Table | None = None,
    ) -> None:
        if table is None:
            dynamo = DynamoTable(client, table_name, sleep=sleep)
            if unprocessed_retry is not None:
                dynamo.unprocessed_retry = unprocessed_retry
            table = dynamo
        self.table = table
        self.clock = clock
        self.media = MediaState(table, self._now)
        self.runs = RunState(table, self._now)
        self.cursors = CursorState(table, self._now)
        self.totals = ArchiveTotals(table, self._now)

    @classmethod
    def from_settings(cls, settings: Settings) -> StateStore:
        from pipeline.aws_clients import make_client

        return cls(client=make_client("dynamodb", settings), table_name=settings.table_name)

    @classmethod
    def in_memory(cls, clock: Callable[[], datetime] = utc_now) -> StateStore:
        return cls(table=MemoryTable(), clock=clock)

    def _now(self, now: datetime | None) -> datetime:
        return aware_utc(now or self.clock())

    # The DynamoDB table's handles, for tests and scripts that reach under the store (hooks, raw items).

    def _dynamo(self) -> DynamoTable:
        if not isinstance(self.table, DynamoTable):
            raise AttributeError("an in-memory StateStore has no DynamoDB client")
        return self.table

    @property
    def client(self) -> Any:
        return self._dynamo().client

    @property
    def table_name(self) -> str:
        return self._dynamo().table_name

    @property
    def unprocessed_retry(self) -> RetryPolicy:
        return self._dynamo().unprocessed_retry

    @unprocessed_retry.setter
    def unprocessed_retry(self, policy: RetryPolicy) -> None:
        self._dynamo().unprocessed_retry = policy
