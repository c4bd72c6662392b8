"""What a listing tells the report besides its counts: skipped types, unreadable media, the walk check.

Why its own module without I/O: these notes travel in the listing cursor while a listing is continued across
invocations, end up in the run record (`listing_notes`), and decide whether a walk was complete enough to move
the high-water mark (`ListingCursor.finished`); each rule is cheaper to prove on plain values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.services.backlog import SkipReason

if TYPE_CHECKING:
    from pipeline.providers.base import ListingPage, MediaItem

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
    # Written by the night's last invocation for the report (`ListingService._finish`): the mode, the library as
    # last fully listed (`{"size", "listed_at"}`, from the cursor), and the backlog (`NightBudget.report_json`).
    mode: str | None = None
    library: dict[str, Any] | None = None
    backlog: dict[str, Any] | None = None

    def note_unreadable(self, label: str, reason: str) -> None:
        self.unreadable_count += 1
        if len(self.unreadable) < MAX_NOTED_UNREADABLE:
            self.unreadable.append([label, reason])

    def check_page(self, page: ListingPage, walked: set[str]) -> None:
        """Count what the page answered towards the walk check (`incomplete`); `walked` the ids seen so far."""
        fresh = [media_id for media_id in page.listed_ids if media_id not in walked]
        walked.update(fresh)
        anonymous = max(0, len(page.items) + len(page.skipped) - len(page.listed_ids)) if page.listed_ids else 0
        self.seen += len(fresh) + anonymous
        self.total_items = page.total_items
        self.checked = self.checked or page.total_items is not None
        self.boundary_ids = list(page.listed_ids)
        if page.short:
            self.short_pages.append(page.page)

    def note_skip(self, item: MediaItem, reason: SkipReason) -> None:
        name = item.raw_type or item.media_type.value
        if reason is SkipReason.UNKNOWN_TYPE:
            self.unknown_types[name] += 1
        elif reason in (SkipReason.NOT_A_VIDEO, SkipReason.EXCLUDED):
            self.left_out_types[name] += 1
        elif reason is SkipReason.NOT_READY:
            self.not_ready[item.ready_state or "unknown"] += 1
        elif reason is SkipReason.INVALID_ID:
            self.note_unreadable(item.media_id[:64], "the id is outside the provider's alphabet")

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
            "mode": self.mode,
            "library": self.library,
            "backlog": self.backlog,
        }

    def report_json(self) -> dict[str, Any]:
        """What the run record keeps for the report (without the hand-over bookkeeping)."""
        document = self.as_json()
        del document["boundary_ids"]
        document["incomplete"] = self.incomplete
        if self.library is None:
            del document["library"]  # never fully listed
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
            mode=data.get("mode") if isinstance(data.get("mode"), str) else None,
            library=data.get("library") if isinstance(data.get("library"), Mapping) else None,
            backlog=data.get("backlog") if isinstance(data.get("backlog"), Mapping) else None,
        )
