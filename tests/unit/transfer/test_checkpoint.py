"""Checkpoints survive JSON and DynamoDB; the engine's configuration and requests hold to their rules."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pipeline.deadline import Deadline
from pipeline.retry import RetryPolicy
from pipeline.transfer import (
    DeadlineReached,
    S3StreamTransfer,
    TransferConfig,
    TransferRequest,
)
from pipeline.transfer.checkpoint import CompletedPart, MultipartCheckpoint
from pipeline.transfer.checksums import crc32c
from pipeline.transfer.plan import MIB

PRESIGNED = (
    "https://gopro-prod.s3.amazonaws.com/path/to/GX010042.MP4"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=deadbeef#frag"
)


def checkpoint() -> MultipartCheckpoint:
    return MultipartCheckpoint(
        bucket="b",
        key="gopro/2024/01/01/x/GX010042.MP4",
        upload_id="up-1",
        part_size=16 * MIB,
        size=40 * MIB,
        parts=(
            CompletedPart(2, '"e2"', crc32c(b"two"), 16 * MIB),
            CompletedPart(1, '"e1"', crc32c(b"one"), 16 * MIB),
        ),
        checksum_type="FULL_OBJECT",
        source_etag='"abc"',
    )


def test_checkpoint_round_trips_through_json():
    original = checkpoint()
    restored = MultipartCheckpoint.from_json(json.loads(json.dumps(original.to_json())))
    assert restored.to_json() == original.to_json()
    assert [p.number for p in restored.parts] == [1, 2]
    assert restored.bytes_done == 32 * MIB


def test_checkpoint_accepts_dynamodb_decimals():
    data = json.loads(json.dumps(checkpoint().to_json()), parse_int=Decimal)
    assert MultipartCheckpoint.from_json(data).to_json() == checkpoint().to_json()


def test_checkpoint_of_an_unknown_size_source():
    data = {**checkpoint().to_json(), "size": None}
    assert MultipartCheckpoint.from_json(data).size is None


def test_prefix_crc_is_the_crc_of_the_contiguous_parts():
    parts = (CompletedPart(1, "a", crc32c(b"one"), 3), CompletedPart(2, "b", crc32c(b"two"), 3))
    cp = MultipartCheckpoint("b", "k", "u", 5 * MIB, None, parts)
    assert cp.prefix_crc32c() == (crc32c(b"onetwo"), 6)
    assert MultipartCheckpoint("b", "k", "u", 5 * MIB, None, parts[1:]).prefix_crc32c() is None


@pytest.mark.parametrize(
    "change",
    [
        {"version": 99},
        {"parts": [[1, "e", 1, 5], [1, "e", 1, 5]]},
        {"parts": [[0, "e", 1, 5]]},
        {"parts": [[1, "e", 1 << 33, 5]]},
        {"part_size": 0},
        {"upload_id": None, "bucket": None} | {"parts": "nope"},
    ],
)
def test_malformed_checkpoints_are_refused(change: dict[str, object]):
    with pytest.raises(ValueError, match="checkpoint"):
        MultipartCheckpoint.from_json({**checkpoint().to_json(), **change})


def test_missing_fields_are_refused():
    data = checkpoint().to_json()
    del data["upload_id"]
    with pytest.raises(ValueError, match="malformed"):
        MultipartCheckpoint.from_json(data)


def test_transfer_request_repr_has_no_url():
    req = TransferRequest(url=PRESIGNED, head_url=PRESIGNED, bucket="b", key="k")
    assert "deadbeef" not in repr(req)
    assert req.source == "https://gopro-prod.s3.amazonaws.com/path/to/GX010042.MP4"


def test_config_validation():
    with pytest.raises(ValueError, match="5 MiB"):
        TransferConfig(part_size=MIB)
    with pytest.raises(ValueError, match="window"):
        TransferConfig(window=0)
    with pytest.raises(ValueError, match="buffer"):
        TransferConfig(part_size=64 * MIB, max_buffer_bytes=32 * MIB)
    with pytest.raises(ValueError, match="checksum_type"):
        TransferConfig(checksum_type="MD5")


def test_config_from_settings_keeps_memory_bounded():
    from pipeline.config import Settings

    settings = Settings().with_overrides(part_size_bytes=200 * MIB, retry_max_attempts=7)
    config = TransferConfig.from_settings(settings, window=4)
    assert config.part_size == 200 * MIB
    assert config.max_buffer_bytes == 200 * MIB
    assert config.retry == RetryPolicy(max_attempts=7, base_delay=1.0, max_delay=60.0)


class NoS3:
    """Any S3 call fails the test: the deadline check happens before anything is touched."""

    meta = None

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"unexpected S3 call {name}")


def test_a_deadline_too_close_to_start_raises_without_touching_anything():
    engine = S3StreamTransfer(NoS3(), config=TransferConfig(), clock=lambda: 100.0)
    req = TransferRequest(url="http://127.0.0.1:9/x", bucket="b", key="k")
    with pytest.raises(DeadlineReached) as raised:
        engine.transfer(req, deadline=Deadline(101.0, clock=lambda: 100.0))
    assert raised.value.checkpoint is None
    assert raised.value.transient
