"""The simulated media library: what each medium looks like in a listing and in its download descriptor.

Why a model of its own: the traps a real archiver falls into live here, so tests can rely on them existing:
videos whose `files` are proxies, chaptered videos with one `source` variation per item plus a huge `concat`,
bursts whose single `source` variation is only a cover while the originals are the `files`, null sizes, empty
filenames, legacy 13-character ids (see /work/shared/gopro-api.md).

Served objects are named by a *rendition* (the path label in a content URL) and an item number:
`source` is always an original file as the camera made it (what an archiver must store), every other rendition
(`proxy`, `cover`, `concat`, `high_res_proxy_mp4`, `mp4_low`, `sprite`, `zip`) is derived and has different bytes.
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devtools.gopro_simulator.config import SimulatorConfig


class MediaType:
    """The 16 `type` spellings the real listing uses (dustin/gopro-plus `MediumType`, plus `Edit` from rclone)."""

    PHOTO = "Photo"
    VIDEO = "Video"
    TIMELAPSE = "TimeLapse"
    TIMELAPSE_VIDEO = "TimeLapseVideo"
    BURST = "Burst"
    BURST_VIDEO = "BurstVideo"
    CHAPTERED = "Chaptered"
    CONTINUOUS = "Continuous"
    LIVESTREAM = "Livestream"
    LOOPED = "Looped"
    LOOPED_VIDEO = "LoopedVideo"
    EXTERNAL_VIDEO = "ExternalVideo"
    SESSION = "Session"
    MULTI_CLIP_EDIT = "MultiClipEdit"
    AUDIO = "Audio"
    EDIT = "Edit"


#: Every documented `type` value, in the order of /work/shared/gopro-api.md.
ALL_TYPES = (
    MediaType.PHOTO,
    MediaType.VIDEO,
    MediaType.TIMELAPSE,
    MediaType.TIMELAPSE_VIDEO,
    MediaType.BURST,
    MediaType.BURST_VIDEO,
    MediaType.CHAPTERED,
    MediaType.CONTINUOUS,
    MediaType.LIVESTREAM,
    MediaType.LOOPED,
    MediaType.LOOPED_VIDEO,
    MediaType.EXTERNAL_VIDEO,
    MediaType.SESSION,
    MediaType.MULTI_CLIP_EDIT,
    MediaType.AUDIO,
    MediaType.EDIT,
)
# Camera-recorded video kinds: one mp4 per item, the originals are the `source` variations.
VIDEO_TYPES = frozenset(
    {
        MediaType.VIDEO,
        MediaType.TIMELAPSE_VIDEO,
        MediaType.BURST_VIDEO,
        MediaType.CHAPTERED,
        MediaType.LIVESTREAM,
        MediaType.LOOPED,
        MediaType.LOOPED_VIDEO,
        MediaType.EXTERNAL_VIDEO,
        MediaType.SESSION,
    }
)
# Series of photos: one `files` entry per frame; a lone `source` variation is only a cover.
MULTI_PHOTO_TYPES = frozenset({MediaType.BURST, MediaType.TIMELAPSE, MediaType.CONTINUOUS})
# Edits made in the app: listed with a null `file_size` and extension `json`; the render is `baked_source`.
EDIT_TYPES = frozenset({MediaType.MULTI_CLIP_EDIT, MediaType.EDIT})
# Every `ready_to_view` value the public clients have seen; only `ready` is reliably downloadable.
READY_STATES = (
    "ready",
    "failure",
    "loading",
    "registered",
    "transcoding",
    "processing",
    "uploading",
    "pretranscoding",
    "updating",
    "live",
    "stabilizing",
)
LISTING_FIELDS = (
    "id",
    "filename",
    "file_extension",
    "file_size",
    "type",
    "captured_at",
    "created_at",
    "content_title",
    "camera_model",
    "width",
    "height",
    "source_duration",
    "ready_to_view",
    "item_count",
    "gopro_user_id",
    "moments_count",
    "token",
    "resolution",
    "fov",
    "orientation",
    "play_as",
    "on_public_profile",
)

# Fixed sizes of small derived objects (a sprite sheet, a sidecar zip).
SPRITE_SIZE = 32 * 1024
SIDECAR_SIZE = 16 * 1024
RAW_LABEL = "raw_photo"  # a photo's RAW original (.GPR), offered as a sidecar file


def _stable_rng(*parts: object) -> random.Random:
    material = "\0".join(str(part) for part in parts).encode()
    return random.Random(int.from_bytes(hashlib.blake2b(material, digest_size=16).digest(), "big"))


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a `Z`, as the listing writes `captured_at`/`created_at`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Rendition:
    """One served object of a medium: `rendition` is the path label of its content URL."""

    rendition: str
    item: int
    size: int
    ext: str

    @property
    def content_type(self) -> str:
        """What the content host says: GoPro's CloudFront serves every object as `binary/octet-stream` (G2C), so
        an archiver must take the type from the name, never from the answer."""
        return "binary/octet-stream"


@dataclass(frozen=True)
class DescriptorEntry:
    """One entry of a download descriptor section, before the simulator signs its `url` and `head`."""

    section: str  # files | variations | sprites | sidecar_files
    rendition: Rendition
    fields: dict[str, Any]


@dataclass
class SimMedia:
    """A medium of the simulated library; a test can build exactly the ones it wants.

    `size` is the size of each original item (one file for a single-item medium); `item_sizes` overrides it with
    explicit per-item sizes. The listing's `file_size` is the total over the items, plus `file_size_offset` (the
    real listing was once seen a few KB off), or null when `file_size_known` is False. `filename=None` derives a
    camera-style name; `""` is served as the empty string (clients then use `<id>.<file_extension>`).
    Fields left as None are derived deterministically from the id.
    """

    id: str
    type: str = MediaType.VIDEO
    size: int = 1_000_000
    items: int = 1
    item_sizes: tuple[int, ...] | None = None
    filename: str | None = None
    file_extension: str | None = None
    ready_to_view: str = "ready"
    file_size_known: bool = True
    file_size_offset: int = 0
    captured_at: datetime | None = None
    created_at: datetime | None = None
    camera_model: str | None = "HERO9 Black"
    width: int | None = None
    height: int | None = None
    content_title: str = ""
    deleted: bool = False
    extra_fields: dict[str, Any] = field(default_factory=dict)
    descriptor_filename: str | None = None
    raw: bool = False
    withheld_items: tuple[int, ...] = ()
    stale_source: bool = False
    # HiLight moments, milliseconds from the start: the listing's `moments_count` and `/media/{id}/moments`.
    moments: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.item_sizes is not None:
            self.item_sizes = tuple(int(size) for size in self.item_sizes)
            self.items = len(self.item_sizes)
        if self.items < 1:
            raise ValueError(f"medium {self.id}: items must be >= 1")
        if any(size < 0 for size in self.sizes):
            raise ValueError(f"medium {self.id}: sizes must be >= 0")
        rng = _stable_rng("media", self.id)
        if self.file_extension is None:
            self.file_extension = "json" if self.type in EDIT_TYPES else "mp4" if self.is_video_like else "jpg"
        if self.filename is None:
            number = rng.randint(1, 9999)
            if self.type in MULTI_PHOTO_TYPES:
                self.filename = f"G{rng.randint(1, 999):03d}{number:04d}.JPG"
            elif self.is_video_like:
                self.filename = f"GX01{number:04d}.MP4"
            else:
                self.filename = f"GOPR{number:04d}.JPG"
        if self.captured_at is None:
            offset = timedelta(seconds=rng.randint(0, 7 * 365 * 86400))
            self.captured_at = datetime(2018, 1, 1, tzinfo=UTC) + offset
        if self.created_at is None:
            self.created_at = self.captured_at + timedelta(seconds=rng.randint(600, 30 * 86400))
        if self.width is None and self.height is None:
            self.width, self.height = (3840, 2160) if self.is_video_like else (4000, 3000)

    @property
    def descriptor_name(self) -> str:
        """The descriptor's `filename`: often empty for an edit (take the extension from the rendition)."""
        if self.descriptor_filename is not None:
            return self.descriptor_filename
        return "" if self.type == MediaType.MULTI_CLIP_EDIT else self.filename or ""

    @property
    def sizes(self) -> tuple[int, ...]:
        """Size of each original item, item 1 first."""
        return self.item_sizes if self.item_sizes is not None else (self.size,) * self.items

    @property
    def total_size(self) -> int:
        return sum(self.sizes)

    @property
    def is_video_like(self) -> bool:
        """Served like a video (one mp4 per item); unknown types (edits...) are served so too."""
        return self.type not in MULTI_PHOTO_TYPES and self.type != MediaType.PHOTO

    @property
    def listed_file_size(self) -> int | None:
        if not self.file_size_known or self.type in EDIT_TYPES:
            return None
        return self.total_size + self.file_size_offset

    def listing(self, user_id: str) -> dict[str, Any]:
        """Every listing field of this medium (the server keeps only those asked for with `fields`)."""
        rng = _stable_rng("listing", self.id)
        video = self.is_video_like
        duration = str(max(1000, self.total_size // 12_500)) if video else None
        assert self.captured_at is not None
        assert self.created_at is not None
        fields_ = {
            "id": self.id,
            "filename": self.filename,
            "file_extension": self.file_extension,
            "file_size": self.listed_file_size,
            "type": self.type,
            "captured_at": iso(self.captured_at),
            "created_at": iso(self.created_at),
            "content_title": self.content_title,
            "camera_model": self.camera_model,
            "width": self.width,
            "height": self.height,
            "source_duration": duration,
            "ready_to_view": self.ready_to_view,
            "item_count": self.items,
            "gopro_user_id": user_id,
            "moments_count": len(self.moments),
            "token": "".join(rng.choices(string.ascii_letters + string.digits, k=16)),
            "resolution": ("4K" if (self.width or 0) >= 3840 else "2.7K") if video else "12MP",
            "fov": rng.choice(["W", "L", "N", "S"]),
            "orientation": 1,
            "play_as": "video" if video else "photo",
            "on_public_profile": False,
        }
        if self.raw:
            fields_["available_labels"] = [RAW_LABEL]
        fields_.update(self.extra_fields)
        return fields_

    def moments_answer(self) -> dict[str, Any]:
        """`GET /media/{id}/moments`, as dustin/gopro-plus reads it (`_embedded.moments[]`, `time` in ms)."""
        entries = [{"id": f"{self.id[:8]}m{n}", "time": t} for n, t in enumerate(self.moments, start=1)]
        return {"_embedded": {"moments": entries, "errors": []}}

    def renditions(self) -> dict[tuple[str, int], Rendition]:
        """Every object the content endpoint serves for this medium, by (rendition, item)."""
        return {(entry.rendition.rendition, entry.rendition.item): entry.rendition for entry in self.descriptor()}

    def descriptor(self) -> list[DescriptorEntry]:
        """The entries of `GET /media/{id}/download`, shaped as in /work/shared/gopro-api.md.

        A medium that is not `ready` has no originals yet: its descriptor is empty, as archivers must not rely on
        anything but `ready` media.
        """
        if self.ready_to_view != "ready":
            return []
        if self.type == MediaType.PHOTO:
            return self._photo_descriptor()
        if self.type in MULTI_PHOTO_TYPES:
            return self._multi_photo_descriptor()
        return self._video_descriptor()

    def _dims(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height}

    def _photo_descriptor(self) -> list[DescriptorEntry]:
        source = Rendition("source", 1, self.sizes[0], "jpg")
        return [
            DescriptorEntry("files", source, self._file_fields(1)),
            DescriptorEntry("variations", source, self._variation_fields("source", "high", "jpg")),
            *self._raw_sidecars(),
        ]

    def _raw_sidecars(self) -> list[DescriptorEntry]:
        """One `raw_photo` sidecar (.gpr, about twice the JPG) per photo when the camera shot RAW."""
        if not self.raw:
            return []
        return [
            DescriptorEntry(
                "sidecar_files",
                Rendition(RAW_LABEL, item, max(1, size * 2), "gpr"),
                {"label": RAW_LABEL, "type": "gpr", "item_number": item},
            )
            for item, size in enumerate(self.sizes, start=1)
        ]

    def _multi_photo_descriptor(self) -> list[DescriptorEntry]:
        # The originals are the `files` (one per photo); the only `source` variation is a cover image.
        entries = [
            DescriptorEntry("files", Rendition("source", item, size, "jpg"), self._file_fields(item))
            for item, size in enumerate(self.sizes, start=1)
            if item not in self.withheld_items
        ]
        cover = Rendition("cover", 1, max(1, self.sizes[0] // 3), "jpg")
        entries.append(DescriptorEntry("variations", cover, self._variation_fields("source", "high", "jpg")))
        return entries + self._raw_sidecars()

    def _video_descriptor(self) -> list[DescriptorEntry]:
        entries: list[DescriptorEntry] = []
        total = self.total_size
        proxy_dims = {"width": 1280, "height": 720}
        # One proxy of the whole recording, however many chapters (G2C): `files` is never the chapter list.
        proxy = Rendition("proxy", 1, max(1, total // 8), "mp4")
        entries.append(DescriptorEntry("files", proxy, {**self._file_fields(1), **proxy_dims}))
        source_label = "baked_source" if self.type in EDIT_TYPES else "source"
        if self.stale_source:
            stale = {**self._variation_fields(source_label, "high", "mp4"), "available": False}
            if self.items > 1:
                stale["item_number"] = 1
            entries.append(DescriptorEntry("variations", Rendition("stale", 1, self.sizes[0], "mp4"), stale))
        for item, size in enumerate(self.sizes, start=1):
            if item in self.withheld_items:
                continue
            fields_ = self._variation_fields(source_label, "high", "mp4")
            if self.items > 1:
                fields_["item_number"] = item
            fields_["available"] = True
            entries.append(DescriptorEntry("variations", Rendition("source", item, size, "mp4"), fields_))
        if self.items > 1:
            concat = Rendition("concat", 1, total, "mp4")
            entries.append(DescriptorEntry("variations", concat, self._variation_fields("concat", "high", "mp4")))
        derived = [
            ("high_res_proxy_mp4", max(1, total // 4), 1920, 1080),
            ("mp4_low", max(1, total // 16), 640, 360),
        ]
        for label, size, width, height in derived:
            fields_ = {**self._variation_fields(label, "medium", "mp4"), "width": width, "height": height}
            entries.append(DescriptorEntry("variations", Rendition(label, 1, size, "mp4"), fields_))
        sprite_fields = {"fps": 1.0, "frame": {"width": 228, "height": 128}, "frame_count": 30, "type": "jpg"}
        sprite_fields.update({"width": 228 * 6, "height": 128 * 5})
        entries.append(DescriptorEntry("sprites", Rendition("sprite", 1, SPRITE_SIZE, "jpg"), sprite_fields))
        sidecar = Rendition("zip", 1, SIDECAR_SIZE, "zip")
        entries.append(DescriptorEntry("sidecar_files", sidecar, {"label": "zip", "type": "zip", "fps": 0}))
        return entries

    def _file_fields(self, item: int) -> dict[str, Any]:
        return {
            "camera_position": "default",
            "item_number": item,
            **self._dims(),
            "orientation": 1,
            "transforms": None,
        }

    def _variation_fields(self, label: str, quality: str, kind: str) -> dict[str, Any]:
        return {"label": label, "quality": quality, "type": kind, **self._dims(), "transforms": None}


def _quota(count: int, fraction: float) -> int:
    """How many of `count` media get a feature: at least one once there are two, so quirks always show up."""
    if count <= 0 or fraction <= 0:
        return 0
    wanted = round(count * fraction)
    return min(count, max(1, wanted) if count >= 2 else wanted)


def _jitter(rng: random.Random, size: int, jitter: float) -> int:
    if jitter <= 0:
        return size
    return max(1, int(size * (1 + rng.uniform(-jitter, jitter))))


def _media_id(rng: random.Random, legacy: bool) -> str:
    if legacy:
        return "".join(rng.choices(string.ascii_letters + string.digits, k=13))
    return f"{rng.getrandbits(96):024x}"


def generate_library(config: SimulatorConfig) -> list[SimMedia]:
    """A deterministic (seeded) mix of media shaped by the config's counts, sizes and quirk fractions."""
    rng = random.Random(f"gopro-simulator-library:{config.seed}")
    chaptered = _quota(config.videos, config.chaptered_fraction)
    timelapse_videos = _quota(config.videos - chaptered, config.timelapse_video_fraction)
    video_kinds = ["chaptered"] * chaptered + [MediaType.TIMELAPSE_VIDEO] * timelapse_videos
    video_kinds += [MediaType.VIDEO] * (config.videos - len(video_kinds))
    bursts = _quota(config.photos, config.burst_fraction)
    timelapses = _quota(config.photos - bursts, config.timelapse_fraction)
    photo_kinds = [MediaType.BURST] * bursts + [MediaType.TIMELAPSE] * timelapses
    photo_kinds += [MediaType.PHOTO] * (config.photos - len(photo_kinds))
    kinds = video_kinds + photo_kinds
    rng.shuffle(kinds)
    total = len(kinds)

    def pick(fraction: float) -> set[int]:
        return set(rng.sample(range(total), _quota(total, fraction)))

    legacy, null_sizes = pick(config.legacy_id_fraction), pick(config.null_size_fraction)
    empty_names, not_ready = pick(config.empty_filename_fraction), pick(config.not_ready_fraction)
    start, span = datetime(2016, 1, 1, tzinfo=UTC), int(timedelta(days=9 * 365).total_seconds())
    captured = sorted(start + timedelta(seconds=rng.randint(0, span)) for _ in range(total))
    cameras = ["HERO5 Black", "HERO7 Black", "HERO8 Black", "HERO9 Black", "HERO11 Black", "MAX", None]
    seen_ids: set[str] = set()
    library: list[SimMedia] = []
    for index, kind in enumerate(kinds):
        media_id = _media_id(rng, index in legacy)
        while media_id in seen_ids:
            media_id = _media_id(rng, index in legacy)
        seen_ids.add(media_id)
        number = 1000 + index
        if kind == "chaptered":
            chapters = rng.randint(2, 4)
            sizes = [_jitter(rng, config.video_size, config.size_jitter) for _ in range(chapters - 1)]
            sizes.append(max(1, int(config.video_size * rng.uniform(0.2, 0.9))))
            media_type, filename = MediaType.VIDEO, f"GX01{number:04d}.MP4"
        elif kind in (MediaType.VIDEO, MediaType.TIMELAPSE_VIDEO):
            sizes = [_jitter(rng, config.video_size, config.size_jitter)]
            media_type, filename = kind, f"GX01{number:04d}.MP4"
        elif kind in MULTI_PHOTO_TYPES:
            photos = rng.randint(3, 6) if kind == MediaType.BURST else rng.randint(4, 8)
            sizes = [_jitter(rng, config.photo_size, config.size_jitter) for _ in range(photos)]
            media_type, filename = kind, f"G{index % 1000:03d}{number:04d}.JPG"
        else:
            sizes = [_jitter(rng, config.photo_size, config.size_jitter)]
            media_type, filename = MediaType.PHOTO, f"GOPR{number:04d}.JPG"
        captured_at = captured[index]
        state = rng.choice(["transcoding", "uploading", "processing"]) if index in not_ready else "ready"
        if media_type in VIDEO_TYPES:
            width, height = rng.choice([(3840, 2160), (2704, 1520), (1920, 1080)])
        else:
            width, height = rng.choice([(4000, 3000), (5568, 4872)])
        # The listing sometimes has null dimensions; keep the descriptor's, which describe the files.
        extra: dict[str, Any] = {"width": None, "height": None} if rng.random() < 0.1 else {}
        # Titles and HiLights from their own generator, so the library drawn above stays what it was.
        facts = _stable_rng("facts", config.seed, index)
        title = facts.choice(["", "", "Morning surf", "Ridge line", "Family day"])
        moments = tuple(sorted(facts.sample(range(1000, 60_000, 250), facts.randint(0, 3))))
        library.append(
            SimMedia(
                id=media_id,
                type=media_type,
                item_sizes=tuple(sizes),
                filename="" if index in empty_names else filename,
                file_size_known=index not in null_sizes,
                ready_to_view=state,
                captured_at=captured_at,
                created_at=captured_at + timedelta(seconds=rng.randint(600, 90 * 86400)),
                camera_model=rng.choice(cameras),
                width=width,
                height=height,
                extra_fields=extra,
                content_title=title,
                moments=moments if media_type in VIDEO_TYPES else (),
            )
        )
    return library


def every_type_library(size: int = 20_000, *, start: datetime | None = None) -> list[SimMedia]:
    """One medium of each of the 16 documented types (a chaptered recording of 3 items, series of 3 frames), one
    hour apart, ids `ab…00` to `ab…0f` in the order of `ALL_TYPES`: the stand-in for a real account's mix."""
    start = start or datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    media = []
    for index, kind in enumerate(ALL_TYPES):
        items = 3 if kind in MULTI_PHOTO_TYPES or kind == MediaType.CHAPTERED else 1
        when = start + timedelta(hours=index)
        media.append(
            SimMedia(id=f"ab{index:022x}", type=kind, size=size, items=items, captured_at=when, created_at=when)
        )
    return media
