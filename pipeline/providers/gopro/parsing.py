"""Turns GoPro JSON into the provider contract's types, refusing anything malformed with a typed error.

Why so strict: a missing field caught here is a clear `ProviderResponseError` with a snippet of the answer; the
same field missing three calls later would be a bare `KeyError` in a downloader with no idea what GoPro said.
Where the API is known to vary (nullable sizes, empty filenames, type spellings) parsing is lenient instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.clock import parse_iso
from pipeline.providers.base import DownloadPlan, ListingPage, MediaItem, MediaType, Moment
from pipeline.providers.errors import ProviderResponseError, TransientResponseError
from pipeline.providers.gopro import api

log = logging.getLogger(__name__)


def _fail(message: str, body: Any, status: int | None = 200) -> ProviderResponseError:
    """Parsing only ever sees answers that came with a 2xx status (others were refused before), hence 200."""
    text = body if isinstance(body, str | bytes) else json.dumps(body, default=str)[:400]
    return ProviderResponseError(message, status=status, body=text)


def _opt_str(obj: Mapping[str, Any], key: str, where: Any) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _fail(f"field {key!r} should be a string", where)


def _opt_int(obj: Mapping[str, Any], key: str, where: Any) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise _fail(f"field {key!r} should be an integer", where)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _fail(f"field {key!r} should be an integer", where)


class UnreadableMedium(ProviderResponseError):
    """One listed medium carries an impossible value (absurd size, unparseable date, bad id): that medium is
    skipped with this reason and reported; the page and the night go on whatever the rest of the page is."""


def _opt_time(obj: Mapping[str, Any], key: str, where: Any) -> datetime | None:
    value = _opt_str(obj, key, where)
    if not value:
        return None
    try:
        parsed = parse_iso(value)
    except ValueError:
        raise UnreadableMedium(f"{key} {value[:40]!r} is not a time") from None
    if not api.EARLIEST_YEAR <= parsed.year < api.LATEST_YEAR:
        raise UnreadableMedium(f"{key} {value[:40]!r} is an impossible time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def media_type_of(raw: str) -> MediaType:
    return api.TYPES.get(raw.replace("_", "").replace("-", "").lower(), MediaType.UNKNOWN)


def type_from_extension(extension: str | None) -> MediaType:
    """A medium listed without its `type`: its file extension still says video or photo."""
    ext = (extension or "").lower().lstrip(".")
    return api.EXTENSION_TYPES.get(ext, MediaType.UNKNOWN)


def fallback_filename(media_id: str, filename: str | None, extension: str | None) -> str:
    """GoPro sends an empty filename for some media; clients then use `<id>.<file_extension>`."""
    if filename:
        return filename
    ext = (extension or "").lstrip(".")
    return f"{media_id}.{ext}" if ext else media_id


def _bounded(value: int | None, key: str, upper: int, *, lower: int = 0) -> int | None:
    if value is not None and not lower <= value <= upper:
        raise UnreadableMedium(f"{key} {value} is impossible")
    return value


def _tolerant_int(obj: Mapping[str, Any], key: str, upper: int, *, lower: int = 0) -> int | None:
    """A sidecar-only number: anything unreadable or impossible is None (logged), never an unreadable medium."""
    try:
        value = _opt_int(obj, key, obj)
    except ProviderResponseError:
        value = None
        if isinstance(obj.get(key), str | float):  # "12.5" or 12.5: a duration may come as a decimal
            try:
                value = int(float(obj[key]))
            except ValueError:
                value = None
    if value is not None and lower <= value <= upper:
        return value
    if obj.get(key) is not None:
        log.info("listing field %s of %s reads as null: %.40r", key, obj.get("id"), obj.get(key))
    return None


def _tolerant_str(obj: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    return "".join(c for c in value.strip() if c.isprintable())[:limit] or None


def parse_medium(raw: Any, *, include_edits: bool = True) -> MediaItem:
    """One listed medium. `ProviderResponseError` when its shape is wrong, `UnreadableMedium` (a subclass) when a
    value in it is impossible. `include_edits` False marks edits excluded (skipped and reported, not archived)."""
    if not isinstance(raw, Mapping):
        raise _fail("a medium should be a JSON object", raw)
    media_id = raw.get("id")
    if isinstance(media_id, int) and not isinstance(media_id, bool):
        media_id = str(media_id)
    if not isinstance(media_id, str) or not media_id:
        raise _fail("a medium has no string 'id'", raw)
    if not api.MEDIA_ID_PATTERN.fullmatch(media_id):
        raise UnreadableMedium(f"id {media_id[:40]!r} is not a GoPro id")
    raw_type = _opt_str(raw, "type", raw) or ""
    extension = _opt_str(raw, "file_extension", raw)
    media_type = media_type_of(raw_type) if raw_type else type_from_extension(extension)
    ready_state = (_opt_str(raw, "ready_to_view", raw) or "").lower()
    size = _bounded(_opt_int(raw, "file_size", raw), "file_size", api.MAX_MEDIUM_BYTES)
    item_count = _bounded(_opt_int(raw, "item_count", raw), "item_count", api.MAX_ITEM_COUNT, lower=1)
    excluded = ""
    if media_type is MediaType.EDIT and not include_edits:
        excluded = "edits are turned off (INCLUDE_EDITS=false)"
    return MediaItem(
        provider=api.NAME,
        media_id=media_id,
        filename=fallback_filename(media_id, _opt_str(raw, "filename", raw), extension),
        media_type=media_type,
        size=size,
        captured_at=_opt_time(raw, "captured_at", raw),
        created_at=_opt_time(raw, "created_at", raw),
        # A missing state is read as ready: the download then decides, instead of skipping forever.
        ready=ready_state in ("", api.READY),
        raw_type=raw_type,
        ready_state=ready_state,
        item_count=item_count,
        excluded=excluded,
        camera_model=_tolerant_str(raw, "camera_model", api.MAX_CAMERA_CHARS),
        title=_tolerant_str(raw, "content_title", api.MAX_TITLE_CHARS),
        duration_s=_duration_s(raw),
        width=_tolerant_int(raw, "width", api.MAX_DIMENSION, lower=1),
        height=_tolerant_int(raw, "height", api.MAX_DIMENSION, lower=1),
        moments_count=_tolerant_int(raw, "moments_count", api.MAX_MOMENTS),
    )


def _duration_s(raw: Mapping[str, Any]) -> float | None:
    """`source_duration` (milliseconds, as a string or a number) in seconds."""
    millis = _tolerant_int(raw, "source_duration", api.MAX_DURATION_MS)
    return millis / 1000 if millis is not None else None


def parse_moments(payload: Any) -> tuple[Moment, ...]:
    """`/media/{id}/moments`: `_embedded.moments` (or a bare list), each `{id, time}` with `time` in
    milliseconds (dustin/gopro-plus asks `?fields=time`; *unconfirmed*). An entry that is not an object is
    dropped; an answer with no list at all raises, so the sidecar says the moments could not be read."""
    embedded = payload.get("_embedded") if isinstance(payload, Mapping) else None
    entries = embedded.get("moments") if isinstance(embedded, Mapping) else payload
    if not isinstance(entries, list):
        raise _fail("the moments answer has no '_embedded.moments' list", payload)
    moments = []
    for entry in entries[: api.MAX_MOMENTS]:
        if not isinstance(entry, Mapping):
            continue
        raw_id = entry.get("id")
        readable = isinstance(raw_id, str | int) and not isinstance(raw_id, bool)
        moments.append(
            Moment(
                moment_id=str(raw_id)[:64] if readable else None,
                time_ms=_tolerant_int(entry, "time", api.MAX_DURATION_MS),
            )
        )
    return tuple(moments)


def _label(raw: Any, index: int) -> str:
    raw_id = raw.get("id") if isinstance(raw, Mapping) else None
    if isinstance(raw_id, str) and raw_id:
        return raw_id[:64]
    return f"<entry {index}>"


def parse_search_page(
    payload: Any, *, requested_page: int, status: int = 200, include_edits: bool = True
) -> ListingPage:
    """One `/media/search` answer. A medium that cannot be used is skipped with its reason; only an answer whose
    envelope is wrong, or a page of several entries none of which has the shape of a medium (the API changed),
    raises. An empty page is returned as such: whether it is the end or a short page is the caller's call."""
    if not isinstance(payload, Mapping):
        raise _fail("the search answer should be a JSON object", payload, status)
    embedded = payload.get("_embedded")
    if not isinstance(embedded, Mapping):
        raise _fail("the search answer has no '_embedded' object", payload, status)
    errors = embedded.get("errors") or []
    if not isinstance(errors, list):
        raise _fail("'_embedded.errors' should be a list", payload, status)
    if errors:
        # GoPro's own errors (e.g. `internal_error` from its search backend) are worth a retry before giving up.
        text = json.dumps(errors, default=str)[:400]
        raise TransientResponseError("GoPro reported errors for the search", status=status, body=text)
    media = embedded.get("media")
    if media is None:
        media = []
    if not isinstance(media, list):
        raise _fail("'_embedded.media' should be a list", payload, status)
    pages = payload.get("_pages")
    total_pages: int | None = None
    total_items: int | None = None
    if pages is not None:
        if not isinstance(pages, Mapping):
            raise _fail("'_pages' should be an object", payload, status)
        total_pages = _opt_int(pages, "total_pages", payload)
        total_items = _opt_int(pages, "total_items", payload)
    items: list[MediaItem] = []
    skipped: list[str] = []
    reasons: list[str] = []
    listed: list[str] = []
    shape_errors: list[ProviderResponseError] = []
    for index, raw in enumerate(media):
        label = _label(raw, index)
        if not label.startswith("<"):
            listed.append(label)
        try:
            items.append(parse_medium(raw, include_edits=include_edits))
        except ProviderResponseError as exc:
            # One bad entry must not stop the archive night after night: report it and go on with the rest.
            skipped.append(label)
            reasons.append(_reason(exc))
            if not isinstance(exc, UnreadableMedium):
                shape_errors.append(exc)
    if len(media) >= 2 and len(shape_errors) == len(media):
        # Not one entry of several has the shape of a medium: the answer's shape changed. Say so with a snippet.
        raise shape_errors[0]
    return ListingPage(
        page=requested_page,
        total_pages=total_pages,
        items=tuple(items),
        skipped=tuple(skipped),
        skip_reasons=tuple(reasons),
        total_items=total_items,
        listed_ids=tuple(listed),
    )


def page_size_of(payload: Any) -> int | None:
    """`_pages.per_page` as the answer states it (larger values asked for are silently capped)."""
    pages = payload.get("_pages") if isinstance(payload, Mapping) else None
    value = pages.get("per_page") if isinstance(pages, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _reason(exc: ProviderResponseError) -> str:
    """A short reason for the report (a shape error's snippet of the answer is for the log, not the e-mail)."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return text.split(" (HTTP ")[0][:200]


def parse_download(
    payload: Any, *, media_id: str, media_type: MediaType, listed_filename: str = "", **facts: Any
) -> DownloadPlan:
    """The originals a download descriptor offers: see `pipeline.providers.gopro.descriptor.plan_download`."""
    from pipeline.providers.gopro.descriptor import plan_download  # it builds on this module's field readers

    return plan_download(
        payload, media_id=media_id, media_type=media_type, listed_filename=listed_filename, **facts
    )


def parse_token_answer(payload: Any, status: int) -> tuple[str, float | None, str | None, str | None]:
    """(access_token, expires_in, refresh_token, user_id) from the token endpoint's JSON."""
    if not isinstance(payload, Mapping):
        raise _fail("the token answer should be a JSON object", "<token answer withheld>", status)
    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ProviderResponseError("the token answer has no access_token", status=status)
    expires_in = payload.get("expires_in")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int | float)):
        raise ProviderResponseError("the token answer's expires_in is not a number", status=status)
    refresh = payload.get("refresh_token")
    owner = payload.get("resource_owner_id")
    return (
        access_token,
        float(expires_in) if expires_in is not None else None,
        refresh if isinstance(refresh, str) and refresh else None,
        str(owner) if owner is not None else None,
    )
