"""The versioned SQS message that asks a downloader to archive one medium, and its strict parser.

Why strict: the queue is a trust boundary (the lister, the manual enqueue script and a DLQ redrive all write to it,
and anyone with `sqs:SendMessage` could). A body that does not parse into a fully valid `DownloadMessage` is a
*poison message*: `parse` raises `PoisonMessage` and nothing else, whatever the input, so the downloader can send
it to the DLQ at once with the reason instead of failing three times on it. Every string is capped, and the ids
that end up in log lines, DynamoDB keys and S3 keys are held to narrow alphabets (no control characters, no path
separators).

Compatibility: `schema_version` changes when a field's meaning changes or a required field is added; a consumer
refuses versions it does not know. Unknown *extra* fields are ignored, so adding an optional field does not need
a new version (deploy consumers first).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipeline.clock import iso_utc, utc_now
from pipeline.errors import SyncError
from pipeline.observability.correlation import CORRELATION_ATTRIBUTE

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({SCHEMA_VERSION})

# SQS message attribute names.
CORRELATION_ID_ATTRIBUTE = CORRELATION_ATTRIBUTE  # one name, defined with the correlation context
SCHEMA_VERSION_ATTRIBUTE = "schema_version"

# Caps. A typical message is under 1 KiB; the largest valid one (a 4,096-character filename of characters outside
# the BMP, each escaped as a 12-byte surrogate pair) is about 50 KiB. The body cap sits above that and keeps a
# hostile body from costing parse time or memory.
MAX_BODY_CHARS = 64 * 1024
MAX_ID_CHARS = 128
MAX_MEDIA_ID_CHARS = 128
MAX_PROVIDER_CHARS = 32
# The provider's original name as the message carries it (into the state record): generous, since a filename of
# 1,000+ characters must still reach the downloader. The lister shortens anything longer before sending. Not the
# limit of the name in the S3 key, which is `pipeline.keys.MAX_FILENAME_CHARS` (the downloader makes a safe key).
MAX_ORIGINAL_FILENAME_CHARS = 4096
MAX_TIMESTAMP_CHARS = 64
MAX_MEDIA_TYPE_CHARS = 32
# The largest object S3 accepts; a bigger size is a corrupt or hostile message, not a video.
MAX_SIZE_BYTES = 5 * 1024**4
# Files in one medium: a long recording has a few dozen chapters, a night-lapse a few thousand frames.
MAX_ITEM_COUNT = 100_000

# Sidecar facts (issue 14): advisory, so `create` drops an impossible one instead of refusing the medium.
MAX_TITLE_CHARS = 512
MAX_CAMERA_CHARS = 128
MAX_DIMENSION = 100_000
MAX_DURATION_S = 7 * 86_400.0
MAX_MOMENTS = 10_000

MEDIA_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
PROVIDER_PATTERN = re.compile(r"[a-z][a-z0-9-]*")
# Run and correlation ids: printable ASCII without spaces (they go into log lines and SQS attributes).
TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")


class PoisonMessage(SyncError, ValueError):
    """A message body that can never be processed. `reason` is a short code, `detail` says which field and why.

    Also raised when the lister tries to build an invalid message, so a bad message is never sent.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class PoisonReason(StrEnum):
    BODY_TOO_LARGE = "body_too_large"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    TOO_LONG = "too_long"
    INVALID_VALUE = "invalid_value"


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a Z (the format of `enqueued_at`)."""
    return iso_utc(moment or utc_now())


def fit_filename(name: str, limit: int = MAX_ORIGINAL_FILENAME_CHARS) -> str:
    """`name` shortened to `limit` characters, keeping a short extension (".mp4") at the end."""
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= 16:
        suffix = "." + extension
        return name[: limit - len(suffix)] + suffix
    return name[:limit]


def _check_str(name: str, value: Any, *, max_chars: int, pattern: re.Pattern[str] | None = None) -> None:
    if not isinstance(value, str):
        raise PoisonMessage(PoisonReason.WRONG_TYPE, f"{name} must be a string")
    if len(value) > max_chars:
        raise PoisonMessage(PoisonReason.TOO_LONG, f"{name} is longer than {max_chars} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise PoisonMessage(PoisonReason.INVALID_VALUE, f"{name} is empty or has characters outside its alphabet")


def _check_version(version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version not in SUPPORTED_SCHEMA_VERSIONS:
        # Show small integers only: str() of a hostile 5,000-digit integer raises, and text says nothing useful.
        shown = str(version) if isinstance(version, int) and abs(version) < 10**9 else type(version).__name__
        raise PoisonMessage(PoisonReason.UNKNOWN_SCHEMA_VERSION, f"schema_version {shown}")


def _check_timestamp(name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    _check_str(name, value, max_chars=MAX_TIMESTAMP_CHARS)
    try:
        datetime.fromisoformat(value)  # Python 3.11+ reads a trailing Z and most of ISO-8601
    except ValueError:
        raise PoisonMessage(PoisonReason.INVALID_VALUE, f"{name} is not an ISO-8601 timestamp") from None


@dataclass(frozen=True, kw_only=True)
class DownloadMessage:
    """One medium to archive. Built by the lister (or the enqueue script), parsed by the downloader.

    Construction validates every field (raising PoisonMessage), so an instance is always sendable and a parsed
    instance is always safe to act on.
    """

    schema_version: int = SCHEMA_VERSION
    run_id: str
    correlation_id: str
    provider: str
    media_id: str
    filename: str
    size: int | None = None
    captured_at: str | None = None
    enqueued_at: str = field(default_factory=utc_timestamp)
    # Optional and additive (no version change): the provider's media type ("video", "timelapse_video", ...), so
    # the downloader asks for the right rendition. Absent means a plain video.
    media_type: str | None = None
    # Optional and additive: how many files (chapters) the listing says the medium holds, so the downloader can
    # refuse an incomplete descriptor. Absent means unknown (the descriptor's own numbering is then checked).
    item_count: int | None = None
    # Optional and additive: the listing's facts the medium's sidecar keeps (`MediaItem.sidecar_facts`), since
    # the downloader sees the message, not the listing row. Absent means not listed (the sidecar says null).
    camera_model: str | None = None
    title: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    moments_count: int | None = None
    uploaded_at: str | None = None

    def __post_init__(self) -> None:
        _check_version(self.schema_version)
        _check_str("run_id", self.run_id, max_chars=MAX_ID_CHARS, pattern=TOKEN_PATTERN)
        _check_str("correlation_id", self.correlation_id, max_chars=MAX_ID_CHARS, pattern=TOKEN_PATTERN)
        _check_str("provider", self.provider, max_chars=MAX_PROVIDER_CHARS, pattern=PROVIDER_PATTERN)
        _check_str("media_id", self.media_id, max_chars=MAX_MEDIA_ID_CHARS, pattern=MEDIA_ID_PATTERN)
        _check_str("filename", self.filename, max_chars=MAX_ORIGINAL_FILENAME_CHARS)
        if self.size is not None:
            if isinstance(self.size, bool) or not isinstance(self.size, int):
                raise PoisonMessage(PoisonReason.WRONG_TYPE, "size must be an integer or null")
            if not 0 <= self.size <= MAX_SIZE_BYTES:
                raise PoisonMessage(PoisonReason.INVALID_VALUE, f"size must be between 0 and {MAX_SIZE_BYTES}")
        _check_timestamp("captured_at", self.captured_at, optional=True)
        _check_timestamp("enqueued_at", self.enqueued_at, optional=False)
        if self.media_type is not None:
            _check_str("media_type", self.media_type, max_chars=MAX_MEDIA_TYPE_CHARS, pattern=MEDIA_ID_PATTERN)
        if self.item_count is not None:
            if isinstance(self.item_count, bool) or not isinstance(self.item_count, int):
                raise PoisonMessage(PoisonReason.WRONG_TYPE, "item_count must be an integer or null")
            if not 0 <= self.item_count <= MAX_ITEM_COUNT:
                raise PoisonMessage(
                    PoisonReason.INVALID_VALUE, f"item_count must be between 0 and {MAX_ITEM_COUNT}"
                )
        self._check_sidecar_facts()

    def _check_sidecar_facts(self) -> None:
        for name, limit in (("camera_model", MAX_CAMERA_CHARS), ("title", MAX_TITLE_CHARS)):
            value = getattr(self, name)
            if value is not None:
                _check_str(name, value, max_chars=limit)
        for name, upper in (("width", MAX_DIMENSION), ("height", MAX_DIMENSION), ("moments_count", MAX_MOMENTS)):
            _check_count(name, getattr(self, name), upper)
        if self.duration_s is not None:
            if isinstance(self.duration_s, bool) or not isinstance(self.duration_s, int | float):
                raise PoisonMessage(PoisonReason.WRONG_TYPE, "duration_s must be a number or null")
            if not 0 <= self.duration_s <= MAX_DURATION_S:
                raise PoisonMessage(PoisonReason.INVALID_VALUE, f"duration_s must be within 0..{MAX_DURATION_S}")
        _check_timestamp("uploaded_at", self.uploaded_at, optional=True)

    @classmethod
    def create(
        cls,
        *,
        run_id: str,
        correlation_id: str,
        provider: str,
        media_id: str,
        filename: str,
        size: int | None = None,
        captured_at: str | None = None,
        media_type: str | None = None,
        item_count: int | None = None,
        now: datetime | None = None,
        camera_model: str | None = None,
        title: str | None = None,
        duration_s: float | None = None,
        width: int | None = None,
        height: int | None = None,
        moments_count: int | None = None,
        uploaded_at: str | None = None,
    ) -> DownloadMessage:
        """A message stamped with the current schema version and `enqueued_at` = now.

        A filename longer than MAX_ORIGINAL_FILENAME_CHARS is shortened here (keeping its extension) rather than
        refused: the provider named it, and the medium must still be archived; the downloader keeps a safe key.
        """
        return cls(
            run_id=run_id,
            correlation_id=correlation_id,
            provider=provider,
            media_id=media_id,
            filename=fit_filename(filename) if isinstance(filename, str) else filename,
            size=size,
            captured_at=captured_at,
            enqueued_at=utc_timestamp(now),
            media_type=media_type,
            # Advisory: an impossible count from the listing is dropped, never a reason to refuse the medium.
            item_count=item_count if isinstance(item_count, int) and 0 <= item_count <= MAX_ITEM_COUNT else None,
            # The sidecar's facts are advisory too: an impossible one is dropped (null), a long text cut.
            camera_model=_fit_text(camera_model, MAX_CAMERA_CHARS),
            title=_fit_text(title, MAX_TITLE_CHARS),
            duration_s=_within(duration_s, MAX_DURATION_S, (int, float)),
            width=_within(width, MAX_DIMENSION, (int,)),
            height=_within(height, MAX_DIMENSION, (int,)),
            moments_count=_within(moments_count, MAX_MOMENTS, (int,)),
            uploaded_at=uploaded_at if _is_timestamp(uploaded_at) else None,
        )

    def to_json(self) -> str:
        """Compact JSON with sorted keys. ASCII-only: non-ASCII and lone surrogates are escaped, so the body is
        always within SQS's allowed character set whatever the filename holds."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)

    def message_attributes(self) -> dict[str, dict[str, str]]:
        """SQS MessageAttributes for SendMessage(Batch): the correlation id travels outside the body too, so a
        consumer can log it even for a body it cannot parse."""
        return {
            CORRELATION_ID_ATTRIBUTE: {"DataType": "String", "StringValue": self.correlation_id},
            SCHEMA_VERSION_ATTRIBUTE: {"DataType": "Number", "StringValue": str(self.schema_version)},
        }


def _check_count(name: str, value: Any, upper: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise PoisonMessage(PoisonReason.WRONG_TYPE, f"{name} must be an integer or null")
    if not 0 <= value <= upper:
        raise PoisonMessage(PoisonReason.INVALID_VALUE, f"{name} must be between 0 and {upper}")


def _fit_text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _within(value: Any, upper: float, kinds: tuple[type, ...]) -> Any:
    ok = isinstance(value, kinds) and not isinstance(value, bool) and 0 <= value <= upper
    return value if ok else None


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_CHARS:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (str,),
    "correlation_id": (str,),
    "provider": (str,),
    "media_id": (str,),
    "filename": (str,),
    "enqueued_at": (str,),
}
_OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {
    "size": (int,),
    "captured_at": (str,),
    "media_type": (str,),
    "item_count": (int,),
    "camera_model": (str,),
    "title": (str,),
    "duration_s": (int, float),
    "width": (int,),
    "height": (int,),
    "moments_count": (int,),
    "uploaded_at": (str,),
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            # Two parsers could disagree on which duplicate wins; refuse the ambiguity.
            raise ValueError("duplicate key")
        obj[key] = value
    return obj


def parse(body: Any) -> DownloadMessage:
    """The DownloadMessage in an SQS body; raises PoisonMessage (and nothing else) for anything unusable."""
    if not isinstance(body, str):
        raise PoisonMessage(PoisonReason.NOT_JSON, "body is not text")
    if len(body) > MAX_BODY_CHARS:
        raise PoisonMessage(PoisonReason.BODY_TOO_LARGE, f"body is longer than {MAX_BODY_CHARS} characters")
    try:
        data = json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_unique_object)
    except (ValueError, RecursionError) as exc:
        raise PoisonMessage(PoisonReason.NOT_JSON, type(exc).__name__) from None
    if not isinstance(data, dict):
        raise PoisonMessage(PoisonReason.NOT_OBJECT, f"body is a JSON {type(data).__name__}")
    if "schema_version" not in data:
        raise PoisonMessage(PoisonReason.UNKNOWN_SCHEMA_VERSION, "schema_version is missing")
    version = data["schema_version"]
    _check_version(version)
    values: dict[str, Any] = {"schema_version": version}
    for name, kinds in _FIELDS.items():
        if name not in data:
            raise PoisonMessage(PoisonReason.MISSING_FIELD, name)
        values[name] = _typed(name, data[name], kinds)
    for name, kinds in _OPTIONAL_FIELDS.items():
        value = data.get(name)
        values[name] = None if value is None else _typed(name, value, kinds)
    return DownloadMessage(**values)


def _typed(name: str, value: Any, kinds: tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise PoisonMessage(PoisonReason.WRONG_TYPE, f"{name} must be {'/'.join(k.__name__ for k in kinds)}")
    return value
