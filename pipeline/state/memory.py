"""An in-memory state table for unit tests of the services: the same primitives as `DynamoTable`, no AWS.

Why it can be trusted: it holds no rules of its own. Conditions and updates are the objects the record classes
built (`pipeline.state.expressions`); this table only evaluates them over a dictionary under one lock, as
DynamoDB serialises writes to an item. `tests/unit/state/test_backends.py` runs the main transitions against
both backends and expects the same answers.

What it does not model: eventual consistency (every read is consistent), throttling, UnprocessedKeys, and item
size limits beyond the ones the record classes check themselves.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pipeline import resources
from pipeline.state.backend import WriteResult
from pipeline.state.expressions import Condition, Item, Update, normalise


@dataclass
class MemoryTable:
    items: dict[str, Item] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _copy(self, key: str) -> Item | None:
        item = self.items.get(key)
        return copy.deepcopy(item) if item is not None else None

    def get(self, key: str, *, consistent: bool = True) -> Item | None:
        with self._lock:
            return self._copy(key)

    def batch_get(self, keys: Sequence[str], *, projection: Sequence[str], consistent: bool) -> list[Item]:
        with self._lock:
            found = (self._copy(key) for key in dict.fromkeys(keys))
            return [{name: item[name] for name in projection if name in item} for item in found if item]

    def put(self, key: str, item: Item, *, condition: Condition | None = None) -> WriteResult:
        with self._lock:
            if condition is not None and not condition.holds(self.items.get(key)):
                return WriteResult(applied=False)
            stored = {name: normalise(value) for name, value in item.items()}
            self.items[key] = copy.deepcopy({resources.TABLE_PARTITION_KEY: key, **stored})
            return WriteResult(applied=True)

    def update(
        self,
        key: str,
        update: Update,
        *,
        condition: Condition | None = None,
        return_new: bool = False,
        return_old_on_refusal: bool = False,
    ) -> WriteResult:
        with self._lock:
            old = self.items.get(key)
            if condition is not None and not condition.holds(old):
                return WriteResult(applied=False, item=self._copy(key) if return_old_on_refusal else None)
            self.items[key] = update.apply(copy.deepcopy(old), {resources.TABLE_PARTITION_KEY: key})
            return WriteResult(applied=True, item=self._copy(key) if return_new else None)

    def _in_index(self, status: str, where: Condition | None) -> list[Item]:
        """The sparse status index: items with both a status and a sync_timestamp, in sort-key order."""
        index_key, sort_key = resources.STATUS_INDEX_PARTITION_KEY, resources.STATUS_INDEX_SORT_KEY
        matching = [
            item
            for item in self.items.values()
            if item.get(index_key) == status and sort_key in item and (where is None or where.holds(item))
        ]
        return sorted(matching, key=lambda item: (item[sort_key], item[resources.TABLE_PARTITION_KEY]))

    def query_status(self, status: str, *, where: Condition | None, oldest_first: bool, limit: int) -> list[Item]:
        with self._lock:
            ordered = self._in_index(status, where)
            if not oldest_first:
                ordered.reverse()
            return copy.deepcopy(ordered[:limit])

    def count_status(self, status: str, *, where: Condition | None) -> int:
        with self._lock:
            return len(self._in_index(status, where))

    def sum_status(self, status: str, attr: str, *, where: Condition | None) -> tuple[int, int]:
        with self._lock:
            items = self._in_index(status, where)
            return len(items), sum(int(item[attr]) for item in items if isinstance(item.get(attr), (int, Decimal)))

    def scan(self, where: Condition) -> list[Item]:
        with self._lock:
            return [copy.deepcopy(item) for item in self.items.values() if where.holds(item)]
