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
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_utc_or_none(moment: datetime | None, *, timespec: str = "milliseconds") -> str | None:
    return None if moment is None else iso_utc(moment, timespec=timespec)


def parse_iso_utc(text: str) -> datetime:
    """Parses what `iso_utc` writes (and any offset); a value without an offset is taken to be UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def epoch_seconds(moment: datetime) -> Decimal:
    """Whole epoch seconds as DynamoDB numbers want them (conditions compare leases numerically)."""
    return Decimal(int(moment.timestamp()))
