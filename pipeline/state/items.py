"""Items and records: how a MediaRecord or a RunRecord is read from an item, and how values are stored.

Both backends hand out plain items (numbers as `Decimal`), read by `record_from_data` / `run_from_data`;
`record_from_item` / `run_from_item` read the typed form DynamoDB's low-level API returns (`{"S": ...}`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from pipeline import resources
from pipeline.state.models import RUN_COUNTERS, Attr, MediaRecord, MediaStatus, RunRecord
from pipeline.transfer.checksums import Checksum

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000  # last_error / lister_error: enough for a message and a status code, not a traceback
TRUNCATION_MARK = "...[truncated]"

# What the lister needs to decide whether to enqueue a medium (and to report why it skipped one).
LISTER_PROJECTION: tuple[str, ...] = (
    Attr.PK,
    Attr.PROVIDER,
    Attr.MEDIA_ID,
    Attr.STATUS,
    Attr.SYNC_TIMESTAMP,
    Attr.SIZE,
    Attr.ATTEMPTS,
    Attr.NOTE,
    Attr.LEASE_EXPIRES_AT,
    Attr.QUEUED_UNTIL,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def aware_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is refused (a lease or a status time must not guess its zone)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return moment.astimezone(UTC)


def epoch(moment: datetime) -> Decimal:
    """A lease time as stored: epoch seconds to the millisecond (`clock.epoch_seconds` is whole seconds, which
    would shorten leases by up to a second; the stored form is kept as it always was)."""
    return Decimal(str(round(aware_utc(moment).timestamp(), 3)))


def truncate_error(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Keep an error message to a size that fits a report line and never bloats the item."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def to_json_text(value: Mapping[str, Any], limit: int, what: str) -> str:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    if len(text.encode()) > limit:
        raise ValueError(f"{what} is {len(text.encode())} bytes, more than {limit}")
    return text


def from_json_text(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):  # tolerate a map written by hand or by an older version
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        log.warning("ignoring an unreadable stored JSON document")
        return None
    return parsed if isinstance(parsed, dict) else None


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def record_from_item(item: Mapping[str, Any]) -> MediaRecord:
    """A MediaRecord from a raw (typed) DynamoDB item, as the low-level API returns it."""
    return record_from_data(deserialize(item))


def record_from_data(data: Mapping[str, Any]) -> MediaRecord:
    """A MediaRecord from a plain item (what both backends hand out)."""
    pk = str(data.get(Attr.PK, ""))
    provider, _, media_id = pk.partition(resources.KEY_SEPARATOR)
    checksum = None
    if data.get(Attr.CHECKSUM_ALGORITHM) and data.get(Attr.CHECKSUM_VALUE):
        checksum = Checksum(str(data[Attr.CHECKSUM_ALGORITHM]), str(data[Attr.CHECKSUM_VALUE]))
    lease = data.get(Attr.LEASE_EXPIRES_AT)
    queued_until = data.get(Attr.QUEUED_UNTIL)
    return MediaRecord(
        provider=str(data.get(Attr.PROVIDER) or provider),
        media_id=str(data.get(Attr.MEDIA_ID) or media_id),
        status=MediaStatus(data.get(Attr.STATUS, MediaStatus.PENDING.value)),
        sync_timestamp=data.get(Attr.SYNC_TIMESTAMP),
        run_id=data.get(Attr.RUN_ID),
        attempts=int(data.get(Attr.ATTEMPTS, 0)),
        s3_key=data.get(Attr.S3_KEY),
        size=_int_or_none(data.get(Attr.SIZE)),
        checksum=checksum,
        last_error=data.get(Attr.LAST_ERROR),
        note=data.get(Attr.NOTE),
        lease_owner=data.get(Attr.LEASE_OWNER),
        lease_expires_at=None if lease is None else datetime.fromtimestamp(float(lease), UTC),
        filename=data.get(Attr.FILENAME),
        captured_at=data.get(Attr.CAPTURED_AT),
        duration_s=_float_or_none(data.get(Attr.DURATION_S)),
        checkpoint=from_json_text(data.get(Attr.CHECKPOINT)),
        media_type=data.get(Attr.MEDIA_TYPE),
        item_count=_int_or_none(data.get(Attr.ITEM_COUNT)),
        listing_facts=from_json_text(data.get(Attr.LISTING_FACTS)),
        queued_at=data.get(Attr.QUEUED_AT),
        queued_until=None if queued_until is None else datetime.fromtimestamp(float(queued_until), UTC),
        queued_run_id=data.get(Attr.QUEUED_RUN_ID),
    )


_FLOAT_COUNTERS: dict[str, type] = {"transfer_seconds": float}


def run_from_item(item: Mapping[str, Any]) -> RunRecord:
    """A RunRecord from a raw (typed) DynamoDB item."""
    return run_from_data(deserialize(item))


def run_from_data(data: Mapping[str, Any]) -> RunRecord:
    """A RunRecord from a plain item."""
    return RunRecord(
        run_id=str(data[Attr.RUN_ID]),
        provider=str(data.get(Attr.PROVIDER, "")),
        correlation_id=str(data.get(Attr.CORRELATION_ID, "")),
        started_at=str(data.get(Attr.STARTED_AT, "")),
        **{name: _FLOAT_COUNTERS.get(name, int)(data.get(name, 0)) for name in RUN_COUNTERS},
        lister_error=data.get(Attr.LISTER_ERROR),
        listing_done=bool(data.get(Attr.LISTING_DONE, False)),
        listing_done_at=data.get(Attr.LISTING_DONE_AT),
        listing_notes=data.get(Attr.LISTING_NOTES),
        report_claimed_at=data.get(Attr.REPORT_CLAIMED_AT),
        report_sent_at=data.get(Attr.REPORT_SENT_AT),
        content_hosts=tuple(sorted(str(host) for host in data.get(Attr.CONTENT_HOSTS) or ())),
        leased_elsewhere_ids=tuple(sorted(str(media) for media in data.get(Attr.LEASED_ELSEWHERE_IDS) or ())),
    )
