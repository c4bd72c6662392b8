"""The GoPro simulator with a listing that scales to 100,000 media, for the listing benchmark.

Why: the simulator's `/media/search` deep-copies and sorts the whole library on every page request (fine for
tests of a few dozen media), which at 100,000 media is seconds per page and would make the benchmark measure
the simulator. This subclass answers the same pages from a sorted snapshot it rebuilds only when the library
changes. Same JSON, same order, same paging; only filtered searches (which the pipeline never sends) fall back to
the original.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from devtools.gopro_simulator import GoProSimulator, SimMedia


class FastListingSimulator(GoProSimulator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._snapshot: list[SimMedia] | None = None
        self._snapshot_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _changed(self) -> None:
        with self._snapshot_lock:
            self._snapshot = None

    def add_media(self, medium: SimMedia) -> None:
        super().add_media(medium)
        self._changed()

    def delete_media(self, media_id: str) -> None:
        super().delete_media(media_id)
        self._changed()

    def set_ready_state(self, media_id: str, state: str) -> None:
        super().set_ready_state(media_id, state)
        self._changed()

    def _sorted(self) -> list[SimMedia]:
        with self._snapshot_lock:
            if self._snapshot is None:
                with self._lock:
                    live = [m for m in self._media.values() if not m.deleted]
                live.sort(key=lambda m: (m.created_at, m.id), reverse=True)
                self._snapshot = live
            return self._snapshot

    def search_page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        plain = (one("order_by") or "created_at") == "created_at" and not (one("processing_states") or one("type"))
        try:
            per_page, page = int(one("per_page") or self.config.default_per_page), int(one("page") or 1)
        except ValueError:
            plain = False
        if not plain or per_page < 1 or page < 1 or self.faults.repeat_last_item:
            return super().search_page(query)
        per_page = min(per_page, self.config.max_per_page)
        media = self._sorted()
        chosen = media[(page - 1) * per_page : page * per_page]
        wanted = [f for f in (one("fields") or "").split(",") if f]
        items = []
        for medium in chosen:
            full = medium.listing(self.tokens.user_id)
            items.append({name: full[name] for name in wanted if name in full} if wanted else full)
        pages = {
            "current_page": page,
            "per_page": per_page,
            "total_items": len(media),
            "total_pages": math.ceil(len(media) / per_page),
        }
        return 200, {"_pages": pages, "_embedded": {"errors": [], "media": items}}
