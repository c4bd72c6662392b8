"""The few primitives a state backend supplies; the record classes (media, runs, cursors) build on them.

Why a seam this narrow (as Powertools' idempotency layer has its persistence primitives): the transition rules
live once above it, in conditions and updates both backends evaluate; a backend only stores items. The DynamoDB
one (`pipeline.state.dynamo`) is what runs; the in-memory one (`pipeline.state.memory`) lets the services' unit
tests run without a moto server.

Keys are the table's partition key strings (`gopro#abc`, `run#...`); items are plain dictionaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.state.expressions import Condition, Item, Update


@dataclass(frozen=True)
class WriteResult:
    """The answer to a conditional write. A refused condition is an answer, never an exception.

    Applied: `item` is the item after the write when the caller asked for it (`return_new`), else None.
    Refused: `item` is the item the condition was evaluated against (None if there was none), when the caller
    asked for it (`return_old_on_refusal`).
    """

    applied: bool
    item: Item | None = None

    def __bool__(self) -> bool:
        return self.applied


class Table(Protocol):
    def get(self, key: str, *, consistent: bool = True) -> Item | None: ...

    def batch_get(self, keys: Sequence[str], *, projection: Sequence[str], consistent: bool) -> list[Item]:
        """Items for the keys that have one (any number of keys, duplicates allowed), projected."""
        ...

    def put(self, key: str, item: Item, *, condition: Condition | None = None) -> WriteResult: ...

    def update(
        self,
        key: str,
        update: Update,
        *,
        condition: Condition | None = None,
        return_new: bool = False,
        return_old_on_refusal: bool = False,
    ) -> WriteResult: ...

    def query_status(self, status: str, *, where: Condition | None, oldest_first: bool, limit: int) -> list[Item]:
        """Up to `limit` items of the status index with `status` matching `where`, by `sync_timestamp`."""
        ...

    def count_status(self, status: str, *, where: Condition | None) -> int: ...

    def sum_status(self, status: str, attr: str, *, where: Condition | None) -> tuple[int, int]:
        """How many items of the status index have `status` (matching `where`), and the sum of their `attr`
        (numbers only; items without it add 0): every page read, projected to `attr` alone."""
        ...

    def scan(self, where: Condition) -> list[Item]:
        """Every item matching `where` (a full read: for operators' questions, never the nightly path)."""
        ...
