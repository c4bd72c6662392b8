"""The transfer engine against a real moto server and a real HTTP server on 127.0.0.1.

Every failure case asserts the handling's observable effect (a retry happened, an upload was aborted, a part was
reused), so each would fail if that handling were removed. No test sleeps: backoff goes through `sleep`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from typing import Any

import pytest
from awscrt.checksums import crc32c as reference_crc32c

from pipeline.deadline import Deadline
from pipeline.retry import RetryPolicy
from pipeline.transfer import (
    CHECKSUM_METADATA_KEY,
    Checksum,
    ChecksumMismatch,
    CompletedPart,
    DeadlineReached,
    MultipartCheckpoint,
    S3StreamTransfer,
    SizeMismatch,
    SourceError,
    TransferConfig,
    TransferRequest,
)
from tests.integration.transfer.conftest import MIB, ContentServer

pytestmark = pytest.mark.integration

BUCKET = "transfer-tests"
KEY = "gopro/2024/05/01/abc/GX010042.MP4"


class Calls:
    """Counts S3 operations (and the part numbers uploaded) through botocore's event hooks."""

    def __init__(self, s3: Any) -> None:
        self.ops: Counter[str] = Counter()
        self.part_numbers: list[int] = []
        s3.meta.events.register("before-call.s3", self._seen)

    def _seen(self, model: Any, params: Any, **_kwargs: Any) -> None:
        self.ops[model.name] += 1
        if model.name == "UploadPart":
            self.part_numbers.append(int(params["query_string"]["partNumber"]))


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def s3(aws: Any) -> Any:
    # moto (without the optional crc32c package) labels a CRC32 as CRC32C, so botocore's validation of GetObject
    # responses would fail on moto's value; our own checks compare bytes and our checksum with a reference.
    client = aws.client("s3", response_checksum_validation="when_required")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})
    return client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def small_parts(**changes: Any) -> TransferConfig:
    values: dict[str, Any] = {
        "part_size": 5 * MIB,
        "multipart_threshold": 8 * MIB,
        "window": 4,
        "read_timeout": 5.0,
        "retry": RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05),
    }
    values.update(changes)
    return TransferConfig(**values)


def engine(s3: Any, sleeps: Sleeps, **changes: Any) -> S3StreamTransfer:
    return S3StreamTransfer(s3, config=small_parts(**changes), sleep=sleeps)


def request(server: ContentServer, *, token: str = "t0", head: bool = True, **changes: Any) -> TransferRequest:
    values: dict[str, Any] = {
        "url": server.url(token),
        "head_url": server.url(token) if head else None,
        "bucket": BUCKET,
        "key": KEY,
        "expected_size": len(server.content),
        "content_type": "video/mp4",
        "metadata": {"media-id": "abc", "run-id": "r1"},
        "tags": {"provider": "gopro"},
    }
    values.update(changes)
    return TransferRequest(**values)


def stored(s3: Any) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()


def assert_stored_equals(s3: Any, content: bytes) -> None:
    assert hashlib.sha256(stored(s3)).hexdigest() == hashlib.sha256(content).hexdigest()


def assert_no_secrets_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Pre-signed query strings are bearer secrets: no engine log line may carry one."""
    engine_lines = [r.getMessage() for r in caplog.records if r.name.startswith("pipeline")]
    assert engine_lines
    for line in engine_lines:
        assert "X-Amz-Signature" not in line
        assert "token=" not in line


def assert_nothing_left(s3: Any) -> None:
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_small_file_is_one_put_with_its_checksum_in_metadata(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content = content_server.serve(3 * MIB + 11)
    calls = Calls(s3)

    result = engine(s3, sleeps).transfer(request(content_server))

    assert_stored_equals(s3, content)
    expected = Checksum.crc32c(reference_crc32c(content))
    assert result.checksum == expected
    assert (result.size, result.multipart, result.mode, result.parts) == (len(content), False, "single", 1)
    assert calls.ops["PutObject"] == 1
    assert calls.ops["CreateMultipartUpload"] == 0
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head["Metadata"] == {"media-id": "abc", "run-id": "r1", CHECKSUM_METADATA_KEY: expected.value}
    assert head["ContentType"] == "video/mp4"
    assert s3.get_object_tagging(Bucket=BUCKET, Key=KEY)["TagSet"] == [{"Key": "provider", "Value": "gopro"}]
    assert result.time_to_first_byte_s is not None
    assert result.throughput_bytes_per_s > 0


def test_multipart_file_arrives_byte_for_byte_with_parallel_ranges(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content = content_server.serve(40 * MIB + 123)
    calls = Calls(s3)

    result = engine(s3, sleeps).transfer(request(content_server))

    assert_stored_equals(s3, content)
    assert result.checksum == Checksum.crc32c(reference_crc32c(content))
    assert (result.multipart, result.mode, result.parts, result.size) == (True, "ranged", 9, len(content))
    assert sorted(calls.part_numbers) == list(range(1, 10))
    assert len(content_server.counters.ranges) == 9  # one ranged GET per part, no whole-body GET
    assert content_server.counters.connections <= 5  # HEAD + a window of 4: connections are reused
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ContentType"] == "video/mp4"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert sleeps == []


def test_probe_without_head_url_uses_a_one_byte_range(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content = content_server.serve(12 * MIB)

    result = engine(s3, sleeps).transfer(request(content_server, head=False))

    assert_stored_equals(s3, content)
    assert content_server.counters.heads == 0
    assert content_server.counters.ranges[0] == "bytes=0-0"
    assert result.mode == "ranged"


def test_connection_cut_mid_part_is_retried(
    s3: Any, content_server: ContentServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="pipeline")
    content = content_server.serve(20 * MIB)
    content_server.faults.cut_after = 2 * MIB + 5
    content_server.faults.cuts = 2

    result = engine(s3, sleeps).transfer(request(content_server))

    assert_stored_equals(s3, content)
    assert result.checksum == Checksum.crc32c(reference_crc32c(content))
    assert content_server.counters.cut == 2
    assert len(sleeps) == 2  # each cut part was retried once, after a backoff that did not really sleep
    assert any("retry" in r.getMessage() for r in caplog.records)
    assert_no_secrets_logged(caplog)


def test_persistent_5xx_gives_up_and_aborts_the_upload(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content_server.serve(40 * MIB)
    content_server.faults.fail_after_gets = 3  # three parts succeed, everything after answers 500
    calls = Calls(s3)

    with pytest.raises(SourceError) as raised:
        engine(s3, sleeps).transfer(request(content_server))

    assert raised.value.status == 500
    assert calls.ops["CreateMultipartUpload"] == 1
    assert calls.ops["UploadPart"] >= 1
    assert calls.ops["AbortMultipartUpload"] == 1
    assert_nothing_left(s3)
    assert 0 < len(sleeps) <= 4 * 3  # bounded: at most (attempts - 1) backoffs for each part in flight


def test_fewer_bytes_than_announced_is_a_size_mismatch(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content_server.serve(23 * MIB)
    content_server.faults.served_size = 23 * MIB - 1000  # the last part always comes up short

    with pytest.raises(SizeMismatch):
        engine(s3, sleeps).transfer(request(content_server))

    assert_nothing_left(s3)


def test_head_announcing_a_wrong_length_is_a_size_mismatch(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content_server.serve(12 * MIB)
    content_server.faults.head_length = 12 * MIB + 1

    with pytest.raises(SizeMismatch):
        engine(s3, sleeps).transfer(request(content_server, expected_size=None))

    assert_nothing_left(s3)


def test_source_changing_mid_transfer_is_a_checksum_mismatch(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content_server.serve(40 * MIB)
    content_server.faults.etag_after_gets = 2

    with pytest.raises(ChecksumMismatch, match="ETag changed"):
        engine(s3, sleeps).transfer(request(content_server))

    assert_nothing_left(s3)


def test_single_put_source_short_is_a_size_mismatch(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content_server.serve(2 * MIB)
    content_server.faults.served_size = MIB
    calls = Calls(s3)

    with pytest.raises(SizeMismatch):
        engine(s3, sleeps).transfer(request(content_server))

    assert calls.ops["PutObject"] == 0
    assert_nothing_left(s3)


def test_expected_size_differing_from_served_size_is_refused(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content_server.serve(12 * MIB)
    calls = Calls(s3)

    with pytest.raises(SizeMismatch) as raised:
        engine(s3, sleeps).transfer(request(content_server, expected_size=12 * MIB + 4096))

    assert (raised.value.expected, raised.value.actual) == (12 * MIB + 4096, 12 * MIB)
    assert sum(calls.ops.values()) == 0
    assert_nothing_left(s3)


def test_expired_url_is_refreshed_once_and_the_transfer_succeeds(
    s3: Any, content_server: ContentServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="pipeline")
    content = content_server.serve(30 * MIB)
    content_server.faults.expired_tokens = {"old"}
    refreshes: list[int] = []

    def refresh() -> str:
        refreshes.append(1)
        return content_server.url("new")

    result = engine(s3, sleeps).transfer(request(content_server, token="old"), refresh_url=refresh)

    assert_stored_equals(s3, content)
    assert refreshes == [1]  # four parts saw 403 together; one refresh served them all
    assert result.url_refreshes == 1
    assert any("refreshed" in r.getMessage() for r in caplog.records)
    assert_no_secrets_logged(caplog)


def test_expired_url_without_refresh_fails_with_403(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content_server.serve(30 * MIB)
    content_server.faults.expired_tokens = {"old"}

    with pytest.raises(SourceError) as raised:
        engine(s3, sleeps).transfer(request(content_server, token="old"))

    assert raised.value.status == 403
    assert "secret" not in str(raised.value)
    assert "token" not in str(raised.value)
    assert sleeps == []  # a 403 is not worth a backoff
    assert_nothing_left(s3)


def test_server_ignoring_range_falls_back_to_one_sequential_stream(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content = content_server.serve(21 * MIB + 5)
    content_server.faults.ignore_range = True

    result = engine(s3, sleeps).transfer(request(content_server))

    assert_stored_equals(s3, content)
    assert result.mode == "sequential"
    assert result.checksum == Checksum.crc32c(reference_crc32c(content))


def test_sequential_stream_cut_restarts_and_rechecks_earlier_parts(
    s3: Any, content_server: ContentServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="pipeline")
    content = content_server.serve(21 * MIB)
    content_server.faults.ignore_range = True
    content_server.faults.cuts = 5  # four ranged GETs of the first window (200, dropped) and then the stream
    content_server.faults.cut_after = 12 * MIB

    result = engine(s3, sleeps).transfer(request(content_server))

    assert_stored_equals(s3, content)
    assert result.mode == "sequential"
    assert len(sleeps) >= 1
    # The server cannot resume mid-body, so the retry read parts 1-2 again and checked them against their CRCs.
    assert any("reading through" in r.getMessage() for r in caplog.records)


def test_unknown_size_streams_sequentially(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content = content_server.serve(17 * MIB + 3)
    content_server.faults.no_length = True  # HEAD without Content-Length, chunked GET bodies

    result = engine(s3, sleeps).transfer(request(content_server, expected_size=None))

    assert_stored_equals(s3, content)
    assert (result.mode, result.size, result.parts) == ("sequential", len(content), 4)
    assert result.checksum == Checksum.crc32c(reference_crc32c(content))


def test_unknown_size_small_file_becomes_a_single_put(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content = content_server.serve(MIB)
    content_server.faults.no_length = True
    calls = Calls(s3)

    result = engine(s3, sleeps).transfer(request(content_server, expected_size=None))

    assert_stored_equals(s3, content)
    assert calls.ops["PutObject"] == 1
    assert calls.ops["CreateMultipartUpload"] == 0
    assert result.multipart is False


def test_deadline_checkpoints_and_resume_reuses_the_uploaded_parts(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content = content_server.serve(40 * MIB)
    now = [0.0]
    s3.meta.events.register("after-call.s3.UploadPart", lambda **_kw: now.__setitem__(0, now[0] + 10.0))
    saved: list[dict[str, Any]] = []
    stopping = S3StreamTransfer(
        s3,
        config=small_parts(window=1, deadline_margin_s=0.0, assumed_throughput_bytes_per_s=5 * MIB),
        sleep=sleeps,
        clock=lambda: now[0],
    )

    with pytest.raises(DeadlineReached) as raised:
        stopping.transfer(
            request(content_server),
            deadline=Deadline(35.0, clock=lambda: now[0]),
            on_checkpoint=lambda cp: saved.append(json.loads(json.dumps(cp.to_json()))),
        )

    # Each part "takes" 10 s: parts 1-3 end at t=30, and part 4 could not finish before 35. The deadline's
    # checkpoint is the last one saved (the first is the progress checkpoint taken when the upload was created).
    assert MultipartCheckpoint.from_json(saved[0]).parts == ()
    checkpoint = MultipartCheckpoint.from_json(saved[-1])
    assert raised.value.checkpoint == checkpoint
    assert [p.number for p in checkpoint.parts] == [1, 2, 3]
    listed = s3.list_parts(Bucket=BUCKET, Key=KEY, UploadId=checkpoint.upload_id)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]  # kept, not aborted
    calls = Calls(s3)

    result = engine(s3, sleeps).transfer(request(content_server), resume=checkpoint)

    assert calls.ops["ListParts"] == 1
    assert calls.ops["CreateMultipartUpload"] == 0
    assert sorted(calls.part_numbers) == [4, 5, 6, 7, 8]
    assert result.reused_parts == 3
    assert result.parts == 8
    assert result.bytes_transferred == 25 * MIB
    assert_stored_equals(s3, content)
    assert result.checksum == Checksum.crc32c(reference_crc32c(content))


def test_resume_refetches_a_part_s3_does_not_have(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content = content_server.serve(20 * MIB)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY, ChecksumAlgorithm="CRC32C")
    part1 = s3.upload_part(
        Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"], PartNumber=1, Body=content[: 5 * MIB]
    )
    checkpoint = MultipartCheckpoint.from_json(
        {
            "version": 1,
            "bucket": BUCKET,
            "key": KEY,
            "upload_id": upload["UploadId"],
            "part_size": 5 * MIB,
            "size": len(content),
            "checksum_type": "COMPOSITE",
            "source_etag": None,
            "parts": [
                [1, part1["ETag"], reference_crc32c(content[: 5 * MIB]), 5 * MIB],
                [2, '"not-in-s3"', reference_crc32c(content[5 * MIB : 10 * MIB]), 5 * MIB],
            ],
        }
    )
    calls = Calls(s3)

    result = engine(s3, sleeps).transfer(request(content_server), resume=checkpoint)

    assert sorted(calls.part_numbers) == [2, 3, 4]
    assert result.reused_parts == 1
    assert_stored_equals(s3, content)


def test_resume_after_the_source_changed_starts_again(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    old = content_server.serve(20 * MIB, seed=1)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY, ChecksumAlgorithm="CRC32C")
    part1 = s3.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"], PartNumber=1, Body=old[: 5 * MIB])
    checkpoint = MultipartCheckpoint(
        bucket=BUCKET,
        key=KEY,
        upload_id=upload["UploadId"],
        part_size=5 * MIB,
        size=len(old),
        parts=(CompletedPart(1, part1["ETag"], reference_crc32c(old[: 5 * MIB]), 5 * MIB),),
        checksum_type="COMPOSITE",
        source_etag=content_server.etag,
    )
    new = content_server.serve(20 * MIB, seed=2)  # same size, other bytes, other ETag
    calls = Calls(s3)

    result = engine(s3, sleeps).transfer(request(content_server), resume=checkpoint)

    assert calls.ops["AbortMultipartUpload"] == 1
    assert calls.ops["CreateMultipartUpload"] == 1
    assert result.reused_parts == 0
    assert_stored_equals(s3, new)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_redirects_are_refused(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content_server.serve(2 * MIB)
    content_server.faults.redirect_to = "http://127.0.0.1:9/elsewhere?sig=x"

    with pytest.raises(SourceError) as raised:
        engine(s3, sleeps).transfer(request(content_server, head=False))

    assert raised.value.status == 302
    assert "sig=x" not in str(raised.value)
    assert_nothing_left(s3)


def test_hosts_outside_allowed_hosts_are_refused_before_any_request(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content_server.serve(2 * MIB)
    guarded = S3StreamTransfer(s3, config=small_parts(), sleep=sleeps, allowed_hosts=("*.gopro.com",))

    with pytest.raises(SourceError, match="not allowed"):
        guarded.transfer(request(content_server))

    assert content_server.counters.gets == content_server.counters.heads == 0


def test_deleted_source_is_a_404_without_retries(s3: Any, content_server: ContentServer, sleeps: Sleeps):
    content_server.serve(2 * MIB)
    content_server.faults.statuses = [404]

    with pytest.raises(SourceError) as raised:
        engine(s3, sleeps).transfer(request(content_server, head=False))

    assert raised.value.status == 404
    assert not raised.value.transient
    assert sleeps == []


# --- progress checkpoints and a resume after a kill -----------------------------------------------------------


class Killed(BaseException):
    """A kill: not an Exception, so nothing in the engine handles it (no abort, no checkpoint)."""


def _kill_at_part(s3: Any, number: int) -> list[bool]:
    """From UploadPart `number` on, the process is dead: every S3 call it makes raises (no abort reaches S3)."""
    dead = [False]

    def before(model: Any, params: Any, **_kw: Any) -> None:
        if model.name == "UploadPart" and int(params["query_string"]["partNumber"]) == number:
            dead[0] = True
        if dead[0]:
            raise Killed(f"killed at part {number}")

    s3.meta.events.register("before-call.s3", before, unique_id="kill-at-part")
    return dead


def _with_s3_part_checksums(s3: Any, crcs: dict[int, int]) -> None:
    """ListParts as S3 answers it for an upload made with ChecksumAlgorithm=CRC32C: each part's ChecksumCRC32C
    (moto leaves it out; LocalStack and S3 give it)."""
    from pipeline.transfer.checksums import to_base64

    def add(parsed: Any, **_kw: Any) -> None:
        for part in parsed.get("Parts", []):
            if part["PartNumber"] in crcs:
                part["ChecksumCRC32C"] = to_base64(crcs[part["PartNumber"]])

    s3.meta.events.register("after-call.s3.ListParts", add)


def _killed_transfer(s3: Any, content_server: ContentServer, sleeps: Sleeps, saved: list[dict[str, Any]]) -> None:
    _kill_at_part(s3, 10)
    with pytest.raises(Killed):
        engine(s3, sleeps, window=1, checkpoint_every_parts=4).transfer(
            request(content_server), on_checkpoint=lambda cp: saved.append(cp.to_json())
        )
    s3.meta.events.unregister("before-call.s3", unique_id="kill-at-part")


def test_progress_is_checkpointed_from_the_upload_s_creation_then_every_few_parts(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content_server.serve(60 * MIB)  # 12 parts of 5 MiB
    saved: list[dict[str, Any]] = []

    _killed_transfer(s3, content_server, sleeps, saved)

    assert [len(cp["parts"]) for cp in saved] == [0, 4, 8]  # the kill at part 10 leaves parts 1-9 in S3
    uploads = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert [u["UploadId"] for u in uploads] == [saved[-1]["upload_id"]]  # the open upload is a known one


def test_a_successor_adopts_the_parts_s3_confirms_beyond_the_last_checkpoint(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content = content_server.serve(60 * MIB)
    saved: list[dict[str, Any]] = []
    _killed_transfer(s3, content_server, sleeps, saved)
    crcs = {n: reference_crc32c(content[(n - 1) * 5 * MIB : n * 5 * MIB]) for n in range(1, 13)}
    _with_s3_part_checksums(s3, crcs)
    calls = Calls(s3)

    result = engine(s3, sleeps).transfer(request(content_server), resume=MultipartCheckpoint.from_json(saved[-1]))

    assert sorted(calls.part_numbers) == [10, 11, 12]  # parts 9 (after the checkpoint) and before: adopted
    assert calls.ops["CreateMultipartUpload"] == 0
    assert result.reused_parts == 9
    assert_stored_equals(s3, content)
    assert result.checksum == Checksum.crc32c(reference_crc32c(content))
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_part_s3_lists_without_its_checksum_is_fetched_again(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content = content_server.serve(60 * MIB)
    saved: list[dict[str, Any]] = []
    _killed_transfer(s3, content_server, sleeps, saved)
    calls = Calls(s3)  # moto's ListParts carries no ChecksumCRC32C: part 9 cannot be folded in unread

    result = engine(s3, sleeps).transfer(request(content_server), resume=MultipartCheckpoint.from_json(saved[-1]))

    assert sorted(calls.part_numbers) == [9, 10, 11, 12]
    assert result.reused_parts == 8
    assert_stored_equals(s3, content)


def test_a_progress_checkpoint_that_cannot_be_written_does_not_stop_the_transfer(
    s3: Any, content_server: ContentServer, sleeps: Sleeps
):
    content = content_server.serve(30 * MIB)
    tried: list[int] = []

    def throttled(cp: MultipartCheckpoint) -> None:
        tried.append(len(cp.parts))
        raise RuntimeError("ProvisionedThroughputExceededException")

    result = engine(s3, sleeps, window=1, checkpoint_every_parts=2).transfer(
        request(content_server), on_checkpoint=throttled
    )

    assert_stored_equals(s3, content)
    assert result.parts == 6
    assert tried[0] == 0  # at the upload's creation
    assert len(tried) >= 3  # tried again at each due point, since none was saved
