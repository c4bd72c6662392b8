"""The one way the project writes and reads ISO-8601 times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.clock import iso_utc, iso_utc_or_none, iso_z, parse_iso, parse_iso_utc

PARIS_SUMMER = timezone(timedelta(hours=2))


def test_iso_utc_writes_milliseconds_and_z_whatever_the_offset() -> None:
    moment = datetime(2026, 7, 14, 23, 30, 5, 123456, tzinfo=PARIS_SUMMER)
    assert iso_utc(moment) == "2026-07-14T21:30:05.123Z"
    assert iso_utc(moment, timespec="seconds") == "2026-07-14T21:30:05Z"
    assert iso_utc(datetime(2026, 1, 1, 2, 0)) == "2026-01-01T02:00:00.000Z"  # naive: already UTC
    assert iso_utc_or_none(None) is None


def test_iso_z_keeps_the_moments_own_offset() -> None:
    assert iso_z(datetime(2026, 7, 14, 23, 30, tzinfo=PARIS_SUMMER)) == "2026-07-14T23:30:00+02:00"
    assert iso_z(datetime(2026, 7, 14, 23, 30, tzinfo=UTC)) == "2026-07-14T23:30:00Z"


@pytest.mark.parametrize("text", ["2026-07-14T21:30:05.123Z", "2026-07-14T23:30:05.123+02:00"])
def test_parse_iso_utc_reads_either_form_as_the_same_instant(text: str) -> None:
    assert parse_iso_utc(text) == datetime(2026, 7, 14, 21, 30, 5, 123000, tzinfo=UTC)
    assert parse_iso_utc(text).tzinfo is UTC


def test_parse_iso_keeps_the_offset_and_round_trips_iso_z() -> None:
    parsed = parse_iso("2026-07-14T23:30:00+02:00")
    assert parsed.utcoffset() == timedelta(hours=2)
    assert iso_z(parsed) == "2026-07-14T23:30:00+02:00"
    assert parse_iso("2026-07-14T23:30:00Z").tzinfo is not None
    assert parse_iso_utc("2026-07-14T23:30:00") == datetime(2026, 7, 14, 23, 30, tzinfo=UTC)
