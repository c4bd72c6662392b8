"""One medium a night may queue (`Candidate`): what its message needs, from the listing row or from the PENDING
record it waits in, and the PENDING record itself (`register`).

Apart from the backlog's budget and selection (`pipeline.services.backlog`) because both the listing's new media
and the table's waiting ones become candidates, and the listing facts a sidecar keeps (`MediaItem.sidecar_facts`)
must survive the wait in the table unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.clock import iso_z
from pipeline.messages import DownloadMessage
from pipeline.providers.base import MediaItem
from pipeline.state import MediaRecord, StateStore

# What a medium whose size the provider did not give costs against the budget: a large GoPro video.
UNKNOWN_SIZE_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class Candidate:
    """A medium that may be queued tonight, with what its message needs."""

    media_id: str
    filename: str
    size: int | None = None
    captured_at: str | None = None
    media_type: str | None = None
    item_count: int | None = None
    # The listing's other facts (`MediaItem.sidecar_facts`): to the message, and from it to the sidecar.
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cost(self) -> int:
        return self.size if self.size is not None and self.size >= 0 else UNKNOWN_SIZE_BYTES

    @classmethod
    def from_item(cls, item: MediaItem) -> Candidate:
        # Not `iso_utc`: the capture time keeps the offset it came with, because the object key's date folder is
        # the date in that offset (`pipeline.keys.object_key`); only a UTC offset is spelt "Z".
        return cls(
            media_id=item.media_id,
            filename=item.filename,
            size=item.size,
            captured_at=iso_z(item.captured_at) if item.captured_at else None,
            media_type=item.media_type.value,
            item_count=item.item_count,
            facts=item.sidecar_facts(),
        )

    @classmethod
    def from_record(cls, record: MediaRecord) -> Candidate:
        return cls(
            media_id=record.media_id,
            filename=record.filename or record.media_id,
            size=record.size,
            captured_at=record.captured_at,
            media_type=record.media_type,
            item_count=record.item_count,
            facts=known_facts(record.listing_facts),
        )

    def message(self, *, run_id: str, correlation_id: str, provider: str) -> DownloadMessage:
        return DownloadMessage.create(
            run_id=run_id,
            correlation_id=correlation_id,
            provider=provider,
            media_id=self.media_id,
            filename=self.filename,
            size=self.size,
            captured_at=self.captured_at,
            media_type=self.media_type,
            item_count=self.item_count,
            **self.facts,
        )


# The listing facts a message takes (`DownloadMessage.create`'s keywords), from `MediaItem.sidecar_facts`.
LISTING_FACT_NAMES = ("camera_model", "title", "duration_s", "width", "height", "moments_count", "uploaded_at")


def known_facts(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored listing facts a message can carry; an unknown or odd one (an older record) is left out, since
    the facts only enrich the sidecar and must never stop a medium being queued."""
    if not isinstance(stored, Mapping):
        return {}
    facts = {name: stored[name] for name in LISTING_FACT_NAMES if stored.get(name) is not None}
    for name in ("width", "height", "moments_count"):
        if name in facts and not (isinstance(facts[name], int) and not isinstance(facts[name], bool)):
            del facts[name]
    if "duration_s" in facts and not isinstance(facts["duration_s"], int | float):
        del facts["duration_s"]
    for name in ("camera_model", "title", "uploaded_at"):
        if name in facts and not isinstance(facts[name], str):
            del facts[name]
    return facts


def register(state: StateStore, provider: str, item: MediaItem, *, run_id: str) -> bool:
    """A PENDING record for a wanted medium the table has never seen, with what its message needs; False when
    another listing wrote one meanwhile (that listing queues it, or leaves it waiting)."""
    fact = Candidate.from_item(item)
    return state.media.register_pending(
        provider,
        item.media_id,
        run_id=run_id,
        filename=fact.filename,
        size=fact.size,
        captured_at=fact.captured_at,
        media_type=fact.media_type,
        item_count=fact.item_count,
        listing_facts=fact.facts,
    )
