"""Turns GoPro JSON into the provider contract's types, refusing anything malformed with a typed error.

Why so strict: a missing field caught here is a clear `ProviderResponseError` with a snippet of the answer; the
same field missing three calls later would be a bare `KeyError` in a downloader with no idea what GoPro said.
Where the API is known to vary (nullable sizes, empty filenames, type spellings) parsing is lenient instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.providers.base import DownloadPlan, ListingPage, MediaItem, MediaType
from pipeline.providers.errors import ProviderResponseError, TransientResponseError
from pipeline.providers.gopro import api


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


def _opt_time(obj: Mapping[str, Any], key: str, where: Any) -> datetime | None:
    value = _opt_str(obj, key, where)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"field {key!r} is not an ISO-8601 time", where) from None
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


def parse_medium(raw: Any) -> MediaItem:
    if not isinstance(raw, Mapping):
        raise _fail("a medium should be a JSON object", raw)
    media_id = raw.get("id")
    if isinstance(media_id, int) and not isinstance(media_id, bool):
        media_id = str(media_id)
    if not isinstance(media_id, str) or not media_id:
        raise _fail("a medium has no string 'id'", raw)
    raw_type = _opt_str(raw, "type", raw) or ""
    extension = _opt_str(raw, "file_extension", raw)
    media_type = media_type_of(raw_type) if raw_type else type_from_extension(extension)
    ready_state = (_opt_str(raw, "ready_to_view", raw) or "").lower()
    return MediaItem(
        provider=api.NAME,
        media_id=media_id,
        filename=fallback_filename(media_id, _opt_str(raw, "filename", raw), extension),
        media_type=media_type,
        size=_opt_int(raw, "file_size", raw),
        captured_at=_opt_time(raw, "captured_at", raw),
        created_at=_opt_time(raw, "created_at", raw),
        # A missing state is read as ready: the download then decides, instead of skipping forever.
        ready=ready_state in ("", api.READY),
        raw_type=raw_type,
        ready_state=ready_state,
        item_count=_opt_int(raw, "item_count", raw),
    )


def parse_search_page(payload: Any, *, requested_page: int, status: int = 200) -> ListingPage:
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
    if pages is not None:
        if not isinstance(pages, Mapping):
            raise _fail("'_pages' should be an object", payload, status)
        total_pages = _opt_int(pages, "total_pages", payload)
    items: list[MediaItem] = []
    skipped: list[str] = []
    first_error: ProviderResponseError | None = None
    for raw in media:
        try:
            items.append(parse_medium(raw))
        except ProviderResponseError as exc:
            # One bad entry must not stop the archive night after night: report it and go on with the rest.
            raw_id = raw.get("id") if isinstance(raw, Mapping) else None
            skipped.append(
                raw_id if isinstance(raw_id, str) and raw_id else f"<entry {len(items) + len(skipped)}>"
            )
            first_error = first_error or exc
    if media and not items and first_error is not None:
        # Every entry unusable is not one bad medium: the answer's shape changed. Say so with a snippet.
        raise first_error
    if not items and total_pages is not None and requested_page < total_pages:
        raise _fail(f"page {requested_page} of {total_pages} is empty", payload, status)
    return ListingPage(page=requested_page, total_pages=total_pages, items=tuple(items), skipped=tuple(skipped))


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
