"""The contract every media source implements; handlers only ever talk to this interface.

Adding a provider means one new subpackage and one `register()` call; no handler changes (see docs on adding a
provider). Types here are deliberately plain dataclasses so they cross threads, SQS and tests without surprises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pipeline.clock import iso_z


class MediaType(StrEnum):
    """What a medium is, as far as archiving it goes (a provider maps its own type names onto these).

    VIDEO covers every camera-recorded video kind (chaptered, looped, burst video...); BURST every series of
    photos whose frames are the originals (a continuous series too); EDIT a render made in the provider's app
    (derived, archived from its rendition); AUDIO a sound recording, not archived.
    """

    VIDEO = "video"
    PHOTO = "photo"
    BURST = "burst"
    TIMELAPSE = "timelapse"
    TIMELAPSE_VIDEO = "timelapse_video"
    EDIT = "edit"
    AUDIO = "audio"
    UNKNOWN = "unknown"

    @property
    def is_video(self) -> bool:
        return self in (MediaType.VIDEO, MediaType.TIMELAPSE_VIDEO)

    @property
    def is_photo(self) -> bool:
        """Archived only when photos are included."""
        return self in (MediaType.PHOTO, MediaType.BURST, MediaType.TIMELAPSE)


@dataclass(frozen=True)
class MediaItem:
    """One medium as the library lists it."""

    provider: str
    media_id: str
    filename: str
    media_type: MediaType
    size: int | None
    captured_at: datetime | None
    created_at: datetime | None
    ready: bool
    raw_type: str = ""
    ready_state: str = ""
    item_count: int | None = None  # files the medium is made of (chapters, frames), when the provider says
    # Set by the provider when its own settings leave this medium out (e.g. edits turned off): skipped, reported.
    excluded: str = ""
    # What the listing says and the file does not, kept in the medium's sidecar. Each is None when the provider
    # does not list it or listed an impossible value (read tolerantly: a bad one never stops the medium).
    camera_model: str | None = None
    title: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    moments_count: int | None = None  # HiLight moments the provider holds for it (fetched with `moments`)

    def sidecar_facts(self) -> dict[str, object]:
        """The listing facts the download message carries to the sidecar: `DownloadMessage.create(**these)`."""
        return {
            "camera_model": self.camera_model,
            "title": self.title,
            "duration_s": self.duration_s,
            "width": self.width,
            "height": self.height,
            "moments_count": self.moments_count,
            "uploaded_at": iso_z(self.created_at) if self.created_at else None,
        }

    def as_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "media_id": self.media_id,
            "filename": self.filename,
            "type": self.media_type.value,
            "size": self.size,
            "captured_at": iso_z(self.captured_at) if self.captured_at else None,
        }


@dataclass(frozen=True)
class DownloadSource:
    """One file to archive: a pre-signed URL fetched without our credentials.

    `size_hint` is the provider's claim; the served Content-Length decides (GoPro's listing was seen a few KB
    off). `head_url` exists because a pre-signed signature covers one HTTP method.
    """

    url: str = field(repr=False)
    filename: str
    content_type: str
    head_url: str | None = field(default=None, repr=False)
    size_hint: int | None = None
    item_number: int = 1
    label: str = "source"


@dataclass(frozen=True)
class Moment:
    """One HiLight moment of a medium: a point the person marked, `time_ms` from the start (None: not stated)."""

    moment_id: str | None
    time_ms: int | None

    def as_json(self) -> dict[str, object]:
        return {"id": self.moment_id, "time_ms": self.time_ms}


@dataclass(frozen=True)
class ListedFacts:
    """What the listing said about a medium, carried to the download: the name to keep when the descriptor has
    none, and how many items (chapters) the descriptor must offer for the medium to be complete."""

    filename: str = ""
    item_count: int | None = None


@dataclass(frozen=True)
class DownloadPlan:
    """Everything to archive for one medium: a chaptered video or a burst has several files."""

    media_id: str
    filename: str
    files: tuple[DownloadSource, ...]


@dataclass(frozen=True)
class ListingPage:
    """One page of the library, with where it sits, so a long listing can stop and continue later.

    `skipped` names the entries we could not use (each reported, never silently dropped) and `skip_reasons`
    says why, in the same order (a provider may leave it empty). `total_items` is the library's (or the range's)
    size as this page states it, and `listed_ids` every id the page answered, those filtered out or unreadable
    included: together they let the listing check that a walk saw everything. `short` is a page that still had
    fewer entries than it should after being asked again.
    """

    page: int
    total_pages: int | None
    items: tuple[MediaItem, ...]
    skipped: tuple[str, ...] = ()
    skip_reasons: tuple[str, ...] = ()
    total_items: int | None = None
    listed_ids: tuple[str, ...] = ()
    short: bool = False

    def skipped_entries(self) -> list[tuple[str, str]]:
        """(label, reason) of every skipped entry."""
        reasons = list(self.skip_reasons) + ["unreadable"] * (len(self.skipped) - len(self.skip_reasons))
        return list(zip(self.skipped, reasons, strict=False))


class CloudProvider(ABC):
    """A cloud media library we archive from."""

    name: ClassVar[str]

    @abstractmethod
    def ensure_authenticated(self, *, min_validity_seconds: int = 0) -> None:
        """Makes sure an access token valid for at least this long is at hand, refreshing it if needed."""

    def check_credentials(self, *, min_validity_seconds: int = 0) -> None:
        """The night's preflight: proves the credentials work with one cheap authenticated call, before any
        listing. Raises `AuthError` naming what to fix. This default only makes sure a token is at hand."""
        self.ensure_authenticated(min_validity_seconds=min_validity_seconds)

    @abstractmethod
    def iter_pages(
        self, *, start_page: int = 1, newer_than: datetime | None = None, until: datetime | None = None
    ) -> Iterator[ListingPage]:
        """The library page by page from `start_page`; with `newer_than`, only media created after it (a provider
        may stop early once past the bound); with `until`, none created after it (the night's explicit end)."""

    def list_media(self, *, newer_than: datetime | None = None) -> Iterator[MediaItem]:
        """Every medium once (pages can repeat an item), newest bound applied."""
        seen: set[str] = set()
        for page in self.iter_pages(newer_than=newer_than):
            for item in page.items:
                if item.media_id not in seen:
                    seen.add(item.media_id)
                    yield item

    @abstractmethod
    def resolve_download(
        self, media_id: str, *, media_type: MediaType = MediaType.VIDEO, listed: ListedFacts | None = None
    ) -> DownloadPlan:
        """Fresh download URLs for the originals of one medium (they expire: call shortly before use).

        `media_type` (from the listing, carried in the message) says which files are the originals: a burst's are
        its photos, a video's its `source` items. `listed`: the listing's facts (name, item count), when known.
        Each file's `(label, item_number)` names it across calls, so an expired link is matched by that pair.
        """

    def still_listed(self, media_id: str) -> bool | None:
        """Whether a fresh walk of the whole library lists `media_id`; None when the walk cannot tell (it was
        incomplete). Asked only to confirm a deletion after a second "not found", so its cost (a full walk) is
        rare. A provider that knows a cheaper, equally sure way overrides it."""
        return any(item.media_id == media_id for item in self.list_media())

    def describe(self, media_id: str) -> MediaItem:
        """One medium as the provider knows it now (MediaNotFound when it does not exist).

        This default resolves the download, which proves the medium exists and gives its filename and sizes;
        a provider with a single-medium read overrides it with richer facts (capture time, type).
        """
        from pipeline.providers.errors import MediaNotFound

        plan = self.resolve_download(media_id)
        if not plan.files:
            raise MediaNotFound(media_id)
        sizes = [f.size_hint for f in plan.files]
        return MediaItem(
            provider=self.name,
            media_id=media_id,
            filename=plan.filename,
            media_type=MediaType.VIDEO,
            size=sum(s for s in sizes if s is not None) if all(s is not None for s in sizes) else None,
            captured_at=None,
            created_at=None,
            ready=True,
        )

    def moments(self, media_id: str) -> tuple[Moment, ...] | None:
        """The HiLight moments of one medium (one call; asked only when the listing counted some), or None when
        the provider has no such read. This default has none; a failure is the caller's to absorb (the sidecar
        then keeps `moments` null with a note, never failing the download)."""
        return None

    @abstractmethod
    def validate_media_id(self, media_id: str) -> str:
        """Returns the id if it is in the provider's alphabet, else raises InvalidMediaId."""
