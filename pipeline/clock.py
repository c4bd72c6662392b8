"""The project's one notion of time: timezone-aware UTC, written as ISO-8601 with a "Z".

Why one module: records, cursors, messages and reports compare and sort these strings, so they must be written
the same way everywhere (milliseconds, "Z" suffix) and parsed tolerantly (either "Z" or "+00:00").
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime, *, timespec: str = "milliseconds") -> str:
    """`2026-12-01T02:00:00.000Z`; naive datetimes are taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_z(moment.astimezone(UTC), timespec=timespec)


def iso_utc_or_none(moment: datetime | None, *, timespec: str = "milliseconds") -> str | None:
    return None if moment is None else iso_utc(moment, timespec=timespec)


def iso_z(moment: datetime, *, timespec: str = "auto") -> str:
    """ISO-8601 in the moment's own offset, UTC written "Z".

    Why not `iso_utc`: a capture time keeps the offset the camera or the provider gave it, because the S3 key's
    date folder is the date in that offset; converting it to UTC would move a video shot late in the evening to
    the next day's folder.
    """
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parses ISO-8601 with "Z" or an offset, keeping the offset (a value without one stays naive)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_iso_utc(text: str) -> datetime:
    """Parses what `iso_utc` writes (and any offset); a value without an offset is taken to be UTC."""
    parsed = parse_iso(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def epoch_seconds(moment: datetime) -> Decimal:
    """Whole epoch seconds as DynamoDB numbers want them (conditions compare leases numerically)."""
    return Decimal(int(moment.timestamp()))
