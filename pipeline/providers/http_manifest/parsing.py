"""Manifest JSON into the contract's types: strict about what reaches a URL or a key, lenient about the rest.

An entry that cannot be used (no id, an id outside the alphabet, no http(s) URL, a malformed size or time) is
skipped and *reported* in `ListingPage.skipped`, never silently dropped and never fatal for the other entries; a
manifest that is not a list or a `{"media": [...]}` object is a `ProviderResponseError`.
"""

from __future__ import annotations

import json
import mimetypes
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from pipeline.clock import parse_iso
from pipeline.errors import SyncError
from pipeline.providers.base import DownloadPlan, DownloadSource, MediaItem, MediaType
from pipeline.providers.errors import ProviderResponseError
from pipeline.providers.http_manifest import api

SKIPPED_LABEL_CHARS = 40


@dataclass(frozen=True)
class Entry:
    """One usable manifest entry."""

    item: MediaItem
    url: str


@dataclass(frozen=True)
class ManifestPage:
    entries: tuple[Entry, ...]
    skipped: tuple[str, ...]
    next_url: str | None


class _Unusable(SyncError, ValueError):
    pass


def _fail(message: str, body: Any) -> ProviderResponseError:
    return ProviderResponseError(message, status=200, body=json.dumps(body, default=str)[:400])


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Unusable("captured_at is not a string")
    try:
        parsed = parse_iso(value)
    except ValueError:
        raise _Unusable("captured_at is not ISO-8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Unusable("size is not a non-negative integer")
    return value


def _media_type(value: Any) -> MediaType:
    if value is None:
        return MediaType.VIDEO
    try:
        return MediaType(str(value).lower())
    except ValueError:
        return MediaType.UNKNOWN


def _filename(raw: Mapping[str, Any], media_id: str, url: str) -> str:
    name = raw.get(api.FILENAME)
    if isinstance(name, str) and name:
        return name
    return posixpath.basename(urlsplit(url).path) or media_id


def parse_entry(raw: Any, base_url: str) -> Entry:
    if not isinstance(raw, Mapping):
        raise _Unusable("not an object")
    media_id = raw.get(api.ID)
    if not isinstance(media_id, str) or not api.MEDIA_ID_PATTERN.fullmatch(media_id):
        raise _Unusable("id missing or outside [A-Za-z0-9_-]{1,128}")
    url = raw.get(api.URL)
    if not isinstance(url, str) or not url:
        raise _Unusable("no url")
    url = urljoin(base_url, url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise _Unusable("url is not http(s)")
    item = MediaItem(
        provider=api.NAME,
        media_id=media_id,
        filename=_filename(raw, media_id, url),
        media_type=_media_type(raw.get(api.TYPE)),
        size=_size(raw.get(api.SIZE)),
        captured_at=_time(raw.get(api.CAPTURED_AT)),
        created_at=None,
        ready=True,
        raw_type=str(raw.get(api.TYPE) or ""),
    )
    return Entry(item=item, url=url)


def _label(raw: Any, index: int) -> str:
    media_id = raw.get(api.ID) if isinstance(raw, Mapping) else None
    if isinstance(media_id, str) and media_id:
        return media_id[:SKIPPED_LABEL_CHARS]
    return f"#{index}"


def parse_manifest(payload: Any, url: str) -> ManifestPage:
    if isinstance(payload, list):
        media: Any = payload
        next_url = None
    elif isinstance(payload, Mapping):
        media = payload.get(api.MEDIA_KEY)
        if not isinstance(media, list):
            raise _fail(f"the manifest has no '{api.MEDIA_KEY}' list", payload)
        raw_next = payload.get(api.NEXT_KEY)
        if raw_next is not None and not isinstance(raw_next, str):
            raise _fail(f"'{api.NEXT_KEY}' should be a URL string", payload)
        next_url = urljoin(url, raw_next) if raw_next else None
    else:
        raise _fail("the manifest should be a JSON list or object", payload)
    entries: list[Entry] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(media):
        try:
            entry = parse_entry(raw, url)
        except _Unusable:
            skipped.append(_label(raw, index))
            continue
        if entry.item.media_id not in seen:
            seen.add(entry.item.media_id)
            entries.append(entry)
    return ManifestPage(tuple(entries), tuple(skipped), next_url)


def download_plan(entry: Entry) -> DownloadPlan:
    filename = entry.item.filename
    source = DownloadSource(
        url=entry.url,
        head_url=entry.url,  # a plain URL answers HEAD too (pre-signed links would need their own)
        filename=filename,
        content_type=mimetypes.guess_type(filename)[0] or "application/octet-stream",
        size_hint=entry.item.size,
    )
    return DownloadPlan(media_id=entry.item.media_id, filename=filename, files=(source,))
