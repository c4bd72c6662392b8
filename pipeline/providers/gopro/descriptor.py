"""A GoPro download descriptor (`GET /media/{id}/download`) into the files to archive, named and checked.

Why a module of its own: this is where losing data quietly is easiest (see ../shared/gopro-api.md, "Download
descriptor"): a video's `files` are proxies, a chaptered recording offers one `source` per chapter and losing the
later chapters is the classic bug, edits keep their original under `baked_source` with a descriptor `filename`
that is often empty, RAW photos come as `raw_photo` sidecars, and entries marked `available: false` must not be
fetched. Every rule here is one of those facts; each plan entry keeps its `(label, item_number)` so an expired
link is refreshed by that pair, never by its position in a list that may change between two descriptors.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from pipeline.providers.base import DownloadPlan, DownloadSource, MediaType
from pipeline.providers.errors import IncompleteMedium
from pipeline.providers.gopro import api
from pipeline.providers.gopro.parsing import _fail, _opt_int

RAW_PHOTO_LABEL = "raw_photo"
# Media whose originals are one `files` entry per frame (a lone `source` is a cover): by value, so a `continuous`
# media type (handled like a burst, ../shared/gopro-api.md) is one as soon as the listing names it.
SERIES_TYPES = frozenset({MediaType.BURST.value, MediaType.TIMELAPSE.value, "continuous"})
FILE_LABEL = "file"  # the plan's label for originals taken from `files` (burst frames, a photo without `source`)
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
# What a medium's file is when nothing names its extension: the camera writes MP4 videos and JPG photos.
_DEFAULT_EXTENSION = {MediaType.PHOTO.value: "jpg", **dict.fromkeys(SERIES_TYPES, "jpg")}
# The stored Content-Type comes from the name: GoPro's content host answers `binary/octet-stream` for everything.
# GPR (GoPro's DNG-based RAW) has no registered type: `mimetypes` answers None, stored as octet-stream.
_CONTENT_TYPES = {"mp4": "video/mp4", "jpg": "image/jpeg", "jpeg": "image/jpeg"}


def _links(embedded: Mapping[str, Any], key: str, payload: Any) -> list[Mapping[str, Any]]:
    """The entries of one section, without those GoPro marks `available: false` (not downloadable now)."""
    value = embedded.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise _fail(f"'_embedded.{key}' should be a list of objects", payload)
    return [v for v in value if v.get("available", True) is not False]


def _label(link: Mapping[str, Any]) -> str:
    return str(link.get("label") or "").lower()


def extension_of(name: str) -> str:
    """The extension of `name` without the dot ("" when it has none we would keep)."""
    ext = posixpath.splitext(name)[1].lstrip(".")
    return ext if _EXTENSION.fullmatch(ext) else ""


def _rendition_extension(link: Mapping[str, Any]) -> str:
    kind = link.get("type")
    return kind.lower() if isinstance(kind, str) and _EXTENSION.fullmatch(kind) else ""


def base_filename(
    descriptor_name: str, listed_name: str, media_id: str, *, rendition_ext: str, media_type: MediaType, edit: bool
) -> str:
    """The name of the medium's original: the descriptor's, else the listed one, else `<id>`; never without an
    extension. An edit's listed name ends in `.json` (its `file_extension`), so it takes the rendition's `type`."""
    if descriptor_name:
        name = descriptor_name
    else:
        name = listed_name or media_id
        if edit and rendition_ext:
            name = f"{posixpath.splitext(name)[0] or media_id}.{rendition_ext}"
    if not extension_of(name):
        ext = rendition_ext or _DEFAULT_EXTENSION.get(media_type.value, "mp4")
        name = f"{name.rstrip('.')}.{ext}"
    return name


def numbered_filename(filename: str, item_number: int, count: int) -> str:
    """`GX010042.MP4` for a one-file medium; `GX010042_02.MP4` for the second file of a multi-file one."""
    if count <= 1:
        return filename
    stem, ext = posixpath.splitext(filename)
    width = max(2, len(str(count)))
    return f"{stem}_{item_number:0{width}d}{ext}"


def sidecar_filename(photo_name: str, link: Mapping[str, Any]) -> str:
    """`GOPR0042.GPR` beside `GOPR0042.JPG`: the photo's stem, the sidecar's `type`, in the photo's letter case."""
    stem, photo_ext = posixpath.splitext(photo_name)
    ext = _rendition_extension(link) or "gpr"
    return f"{stem}.{ext.upper() if photo_ext.isupper() else ext}"


def content_type_of(filename: str) -> str:
    ext = extension_of(filename).lower()
    return _CONTENT_TYPES.get(ext) or mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _source(link: Mapping[str, Any], filename: str, label: str, number: int, payload: Any) -> DownloadSource:
    url = link.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise _fail("a download link has no http(s) 'url'", payload)
    head = link.get("head")
    if head is not None and not isinstance(head, str):
        raise _fail("a download link's 'head' should be a string", payload)
    return DownloadSource(
        url=url,
        head_url=head or None,
        filename=filename,
        content_type=content_type_of(filename),
        item_number=number,
        label=label,
    )


def _numbered(links: list[Mapping[str, Any]], payload: Any, media_id: str) -> list[tuple[int, Mapping[str, Any]]]:
    """(item number, link) sorted by number (a missing number is the link's position); duplicates refused."""
    numbered = sorted(
        ((_opt_int(link, "item_number", payload) or index + 1, link) for index, link in enumerate(links)),
        key=lambda pair: pair[0],
    )
    numbers = [n for n, _ in numbered]
    if len(set(numbers)) != len(numbers):
        raise _fail(f"duplicate item numbers {numbers} in the originals of {media_id}", payload)
    return numbered


def _check_complete(numbers: list[int], item_count: int | None, media_id: str, payload: Any) -> None:
    """Every chapter 1..N is offered, N being the listing's `item_count` when known."""
    expected = item_count if item_count and item_count > 0 else len(numbers)
    if numbers != list(range(1, expected + 1)):
        raise IncompleteMedium(
            f"{media_id} is incomplete: the listing says {expected} item(s), the descriptor offers "
            f"original item(s) {numbers}; retrying later instead of archiving a part"
        )


def plan_download(
    payload: Any,
    *,
    media_id: str,
    media_type: MediaType,
    listed_filename: str = "",
    item_count: int | None = None,
    include_raw: bool = False,
) -> DownloadPlan:
    """The originals of one medium: never a video's proxies in `files`, never the `concat` of a chaptered one;
    a photo's RAW sidecars too when `include_raw`."""
    if not isinstance(payload, Mapping):
        raise _fail("the download answer should be a JSON object", payload)
    embedded = payload.get("_embedded")
    if not isinstance(embedded, Mapping):
        raise _fail("the download answer has no '_embedded' object", payload)
    descriptor_name = payload.get("filename")
    if descriptor_name is not None and not isinstance(descriptor_name, str):
        raise _fail("field 'filename' should be a string", payload)
    files = _links(embedded, "files", payload)
    variations = _links(embedded, "variations", payload)

    def labelled(label: str) -> list[Mapping[str, Any]]:
        return [v for v in variations if _label(v) == label]

    multi_photo = media_type.value in SERIES_TYPES
    if multi_photo:
        chosen, label = (files, FILE_LABEL) if files else (labelled(api.SOURCE_LABEL), api.SOURCE_LABEL)
    elif media_type == MediaType.PHOTO:
        chosen, label = labelled(api.SOURCE_LABEL), api.SOURCE_LABEL
        if not chosen:
            chosen, label = files[:1], FILE_LABEL
    else:
        chosen, label = labelled(api.SOURCE_LABEL), api.SOURCE_LABEL
        if not chosen:
            chosen, label = labelled(api.BAKED_SOURCE_LABEL), api.BAKED_SOURCE_LABEL
    if not chosen:
        raise _fail(f"no original ('source') file offered for {media_type.value} {media_id}", payload)
    numbered = _numbered(chosen, payload, media_id)
    if label == api.SOURCE_LABEL and not multi_photo and media_type != MediaType.PHOTO:
        # Chapters only: frames of a burst may be fewer than listed (GoPro drops failed frames), and an edit's
        # `item_count` may count the clips it was cut from, while its `baked_source` is one file.
        _check_complete([n for n, _ in numbered], item_count, media_id, payload)
    name = base_filename(
        descriptor_name or "",
        listed_filename,
        media_id,
        rendition_ext=_rendition_extension(numbered[0][1]) if label != FILE_LABEL else "",
        media_type=media_type,
        edit=label == api.BAKED_SOURCE_LABEL,
    )
    count = len(numbered)
    sources = [
        _source(link, numbered_filename(name, number, count), label, number, payload) for number, link in numbered
    ]
    if include_raw and (multi_photo or media_type == MediaType.PHOTO):
        photos = {source.item_number: source.filename for source in sources}
        raws = [s for s in _links(embedded, "sidecar_files", payload) if _label(s) == RAW_PHOTO_LABEL]
        for number, link in _numbered(raws, payload, media_id):
            photo = photos.get(number) or numbered_filename(name, number, max(count, number))
            sources.append(_source(link, sidecar_filename(photo, link), RAW_PHOTO_LABEL, number, payload))
    return DownloadPlan(media_id=media_id, filename=name, files=tuple(sources))
