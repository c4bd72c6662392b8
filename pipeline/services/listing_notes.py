"""What a listing tells the report besides its counts: skipped types, unreadable media, the walk check.

Why its own module without I/O: these notes travel in the listing cursor while a listing is continued across
invocations, end up in the run record (`listing_notes`), and decide whether a walk was complete enough to move
the high-water mark (`ListingCursor.finished`); each rule is cheaper to prove on plain values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Unreadable media named one by one in the notes (and so in the report); beyond that only counted.
MAX_NOTED_UNREADABLE = 20
MAX_NOTED_NAMES = 20


@dataclass
class ListingNotes:
    """What a listing tells the report besides its counts, kept in the cursor while the listing is continued.

    - `unknown_types` / `left_out_types`: the provider's type names skipped (unknown; known but not archived).
    - `not_ready`: media still processing in the cloud, by state (they hold the high-water mark, or wait for the
      next reconcile).
    - `unreadable`: `[label, reason]` of media with impossible values (first `MAX_NOTED_UNREADABLE`), and
      `unreadable_count` of them all.
    - The walk check: `seen` entries (distinct ids, plus entries without one) against the last `total_items`
      a page stated; `short_pages` still short after being asked again; `boundary_ids` the last page's ids, so
      a continued listing does not count an item repeated across the hand-over twice.
    """

    unknown_types: Counter[str] = field(default_factory=Counter)
    left_out_types: Counter[str] = field(default_factory=Counter)
    not_ready: Counter[str] = field(default_factory=Counter)
    unreadable: list[list[str]] = field(default_factory=list)
    unreadable_count: int = 0
    seen: int = 0
    total_items: int | None = None
    checked: bool = False  # a page stated `total_items` at all
    short_pages: list[int] = field(default_factory=list)
    boundary_ids: list[str] = field(default_factory=list)

    def note_unreadable(self, label: str, reason: str) -> None:
        self.unreadable_count += 1
        if len(self.unreadable) < MAX_NOTED_UNREADABLE:
            self.unreadable.append([label, reason])

    @property
    def incomplete(self) -> str | None:
        """Why the walk cannot be trusted to have seen everything (None: it can, or nothing says otherwise)."""
        reasons = []
        if self.short_pages:
            pages = ", ".join(str(p) for p in self.short_pages[:MAX_NOTED_NAMES])
            reasons.append(f"page(s) {pages} stayed short")
        if self.checked and self.total_items is not None and self.seen < self.total_items:
            reasons.append(f"saw {self.seen} of the {self.total_items} media the service counts")
        return "; ".join(reasons) or None

    @property
    def worth_reporting(self) -> bool:
        """Something a person should read about even on a night that queued nothing."""
        return bool(self.incomplete or self.unreadable_count or self.unknown_types)

    def as_json(self) -> dict[str, Any]:
        return {
            "unknown_types": dict(self.unknown_types),
            "left_out_types": dict(self.left_out_types),
            "not_ready": dict(self.not_ready),
            "unreadable": [list(pair) for pair in self.unreadable],
            "unreadable_count": self.unreadable_count,
            "seen": self.seen,
            "total_items": self.total_items,
            "checked": self.checked,
            "short_pages": list(self.short_pages),
            "boundary_ids": list(self.boundary_ids),
        }

    def report_json(self) -> dict[str, Any]:
        """What the run record keeps for the report (without the hand-over bookkeeping)."""
        document = self.as_json()
        del document["boundary_ids"]
        document["incomplete"] = self.incomplete
        return document

    @classmethod
    def from_json(cls, data: Any) -> ListingNotes:
        if not isinstance(data, Mapping):
            return cls()

        def counter(key: str) -> Counter[str]:
            value = data.get(key)
            if not isinstance(value, Mapping):
                return Counter()
            return Counter({str(k): int(v) for k, v in value.items() if isinstance(v, int)})

        def strings(value: Any) -> list[str]:
            return [str(v) for v in value] if isinstance(value, list) else []

        total = data.get("total_items")
        return cls(
            unknown_types=counter("unknown_types"),
            left_out_types=counter("left_out_types"),
            not_ready=counter("not_ready"),
            unreadable=[strings(pair)[:2] for pair in data.get("unreadable") or [] if isinstance(pair, list)],
            unreadable_count=int(data.get("unreadable_count") or 0),
            seen=int(data.get("seen") or 0),
            total_items=total if isinstance(total, int) else None,
            checked=bool(data.get("checked", False)),
            short_pages=[int(p) for p in data.get("short_pages") or [] if isinstance(p, int)],
            boundary_ids=strings(data.get("boundary_ids")),
        )
