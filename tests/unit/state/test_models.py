from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline import resources
from pipeline.clock import iso_utc, parse_iso_utc
from pipeline.state import (
    MAX_ERROR_CHARS,
    Attr,
    Checksum,
    MediaStatus,
    record_from_item,
    table_definition,
    truncate_error,
)
from pipeline.state.items import aware_utc

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


def test_table_definition_follows_the_shared_key_design() -> None:
    definition = table_definition("tracker")

    assert definition["TableName"] == "tracker"
    assert definition["KeySchema"] == [{"AttributeName": resources.TABLE_PARTITION_KEY, "KeyType": "HASH"}]
    (index,) = definition["GlobalSecondaryIndexes"]
    assert index["IndexName"] == resources.STATUS_INDEX_NAME
    assert [k["AttributeName"] for k in index["KeySchema"]] == [
        resources.STATUS_INDEX_PARTITION_KEY,
        resources.STATUS_INDEX_SORT_KEY,
    ]
    declared = {a["AttributeName"] for a in definition["AttributeDefinitions"]}
    assert declared == {resources.TABLE_PARTITION_KEY, resources.STATUS_INDEX_PARTITION_KEY, Attr.SYNC_TIMESTAMP}


def test_key_attributes_are_the_resource_constants() -> None:
    assert Attr.PK == resources.TABLE_PARTITION_KEY
    assert Attr.STATUS == resources.STATUS_INDEX_PARTITION_KEY
    assert Attr.SYNC_TIMESTAMP == resources.STATUS_INDEX_SORT_KEY


def test_iso_utc_is_fixed_width_and_sorts_in_time_order() -> None:
    paris = timezone(timedelta(hours=2))
    stamps = [iso_utc(T0 + timedelta(milliseconds=ms)) for ms in (0, 1, 999, 1000, 86_400_000)]
    assert stamps[0] == "2024-05-01T02:00:00.000Z"
    assert len({len(s) for s in stamps}) == 1
    assert stamps == sorted(stamps)
    assert iso_utc(datetime(2024, 5, 1, 4, 0, tzinfo=paris)) == "2024-05-01T02:00:00.000Z"
    assert parse_iso_utc(stamps[2]) == T0 + timedelta(milliseconds=999)
    with pytest.raises(ValueError, match="naive"):  # the store refuses naive times (`pipeline.clock` assumes UTC)
        aware_utc(datetime(2024, 5, 1))


def test_truncate_error() -> None:
    assert truncate_error("short") == "short"
    long = truncate_error("e" * 10_000)
    assert len(long) == MAX_ERROR_CHARS
    assert long.endswith("[truncated]")


def test_record_from_item_reads_every_attribute() -> None:
    item = {
        "pk": {"S": "gopro#abc"},
        "status": {"S": "IN_PROGRESS"},
        "sync_timestamp": {"S": "2024-05-01T02:00:00.000Z"},
        "attempts": {"N": "2"},
        "size": {"N": "1048576"},
        "checksum_algorithm": {"S": "SHA256"},
        "checksum_value": {"S": "abc="},
        "lease_owner": {"S": "w1"},
        "lease_expires_at": {"N": "1714528860.5"},
        "duration_s": {"N": "1.25"},
        "checkpoint": {"S": '{"upload_id":"u","parts_done":3}'},
    }
    record = record_from_item(item)
    assert (record.provider, record.media_id) == ("gopro", "abc")  # recovered from the key
    assert record.status is MediaStatus.IN_PROGRESS
    assert record.attempts == 2
    assert record.size == 1048576
    assert record.checksum == Checksum("SHA256", "abc=")
    assert record.lease_expires_at == datetime(2024, 5, 1, 2, 1, 0, 500000, tzinfo=UTC)
    assert record.duration_s == 1.25
    assert record.checkpoint == {"upload_id": "u", "parts_done": 3}
    assert record.lease_live(T0)
    assert not record.lease_live(T0 + timedelta(minutes=2))


def test_unreadable_checkpoint_is_ignored_not_fatal() -> None:
    record = record_from_item({"pk": {"S": "gopro#abc"}, "status": {"S": "PENDING"}, "checkpoint": {"S": "{"}})
    assert record.checkpoint is None
