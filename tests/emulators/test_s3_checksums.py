"""LocalStack's S3 refuses wrong CRC32Cs, and so the transfer engine cannot store bytes it checksummed wrongly.

Why this exists: moto never checks the checksum a part is sent with (and without the `crc32c` package computes a
CRC32 where CRC32C is asked for), so an engine that sent a wrong per-part CRC32C passed the whole moto suite.
LocalStack validates both the per-part CRC32C (UploadPart answers BadDigest) and the FULL_OBJECT CRC32C given at
completion (BadDigest too), as S3 does. The boto3 tests pin that LocalStack behaviour down (if an upgrade lost
it, the engine tests below would prove nothing); the engine tests break the CRC the engine computes and require
the transfer to fail, with nothing left behind.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import pytest
from awscrt.checksums import crc32c as reference_crc32c
from botocore.exceptions import ClientError

from pipeline.aws_errors import error_code
from pipeline.retry import RetryPolicy
from pipeline.transfer import S3StreamTransfer, TransferConfig, TransferError, TransferRequest, TransferResult
from tests.emulators.conftest import LocalStackAws
from tests.integration.transfer.conftest import MIB, ContentServer

pytestmark = [pytest.mark.integration, pytest.mark.localstack]

# --- The transfer engine's API, in one place: after the transfer refactor, re-point these and nothing else. ---
# The function that computes each part's CRC32C as its bytes arrive, and the one that folds the part CRCs into
# the whole-object CRC32C sent at completion.
PART_CRC = "pipeline.transfer.source.crc32c"
WHOLE_CRC = "pipeline.transfer.job.combine_parts"


def run_engine(s3: Any, server: ContentServer, bucket: str, key: str) -> TransferResult:
    """One transfer of the content server's file into `s3://bucket/key` by the engine, in 5 MiB parts."""
    config = TransferConfig(
        part_size=5 * MIB,
        multipart_threshold=8 * MIB,
        window=4,
        read_timeout=10.0,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    )
    request = TransferRequest(
        url=server.url(),
        head_url=server.url(),
        bucket=bucket,
        key=key,
        expected_size=len(server.content),
        content_type="video/mp4",
    )
    return S3StreamTransfer(s3, config=config, sleep=lambda _s: None).transfer(request)


# ---------------------------------------------------------------------------------------------------------------

KEY = "gopro/2024/05/01/abc/GX010042.MP4"


def b64(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def wrong(crc: int) -> int:
    return crc ^ 0x1


def assert_nothing_stored(s3: Any, bucket: str) -> None:
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


@pytest.fixture
def s3(localstack_aws: LocalStackAws) -> Any:
    return localstack_aws.s3()


@pytest.fixture
def bucket(localstack_aws: LocalStackAws, s3: Any) -> str:
    return localstack_aws.bucket(s3)


def upload_parts(s3: Any, bucket: str, upload_id: str, bodies: Iterable[bytes]) -> list[dict[str, Any]]:
    parts = []
    for number, body in enumerate(bodies, start=1):
        crc = b64(reference_crc32c(body))
        answer = s3.upload_part(
            Bucket=bucket, Key=KEY, UploadId=upload_id, PartNumber=number, Body=body, ChecksumCRC32C=crc
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32C": crc})
    return parts


def create_upload(s3: Any, bucket: str) -> str:
    return s3.create_multipart_upload(
        Bucket=bucket, Key=KEY, ChecksumAlgorithm="CRC32C", ChecksumType="FULL_OBJECT"
    )["UploadId"]


def test_a_part_with_a_wrong_crc32c_is_refused_with_bad_digest(s3: Any, bucket: str):
    body = bytes(range(256)) * (5 * MIB // 256)
    upload_id = create_upload(s3, bucket)

    with pytest.raises(ClientError) as refused:
        s3.upload_part(
            Bucket=bucket,
            Key=KEY,
            UploadId=upload_id,
            PartNumber=1,
            Body=body,
            ChecksumCRC32C=b64(wrong(reference_crc32c(body))),
        )

    assert error_code(refused.value) == "BadDigest"
    assert s3.list_parts(Bucket=bucket, Key=KEY, UploadId=upload_id).get("Parts", []) == []
    # The same bytes with their true CRC32C are accepted: the refusal was about the checksum, nothing else.
    assert upload_parts(s3, bucket, upload_id, [body])[0]["PartNumber"] == 1


def test_a_wrong_full_object_crc32c_at_completion_is_refused(s3: Any, bucket: str):
    bodies = [b"\x01" * (5 * MIB), b"tail of the object"]
    upload_id = create_upload(s3, bucket)
    parts = upload_parts(s3, bucket, upload_id, bodies)
    whole = reference_crc32c(b"".join(bodies))

    def complete(crc: int) -> dict[str, Any]:
        return s3.complete_multipart_upload(
            Bucket=bucket,
            Key=KEY,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            ChecksumCRC32C=b64(crc),
            ChecksumType="FULL_OBJECT",
        )

    with pytest.raises(ClientError) as refused:
        complete(wrong(whole))

    assert error_code(refused.value) == "BadDigest"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert complete(whole)["ChecksumCRC32C"] == b64(whole)


def test_the_engine_cannot_store_parts_whose_crc32c_it_computed_wrongly(
    s3: Any, bucket: str, content_server: ContentServer, monkeypatch: pytest.MonkeyPatch
):
    """The surviving mutant of issue 12: a wrong per-part CRC32C. On LocalStack the transfer must fail."""
    content_server.serve(12 * MIB + 5)
    real = reference_crc32c
    monkeypatch.setattr(PART_CRC, lambda data, previous=0: wrong(real(data, previous)))

    with pytest.raises(TransferError, match="BadDigest"):
        run_engine(s3, content_server, bucket, KEY)

    assert_nothing_stored(s3, bucket)  # the engine aborted its multipart upload


def test_the_engine_cannot_complete_with_a_wrong_whole_object_crc32c(
    s3: Any, bucket: str, content_server: ContentServer, monkeypatch: pytest.MonkeyPatch
):
    content_server.serve(12 * MIB + 5)
    monkeypatch.setattr(WHOLE_CRC, lambda parts: wrong(real_combine(parts)))

    with pytest.raises(TransferError, match=r"CompleteMultipartUpload.*BadDigest"):
        run_engine(s3, content_server, bucket, KEY)

    assert_nothing_stored(s3, bucket)


def real_combine(parts: Iterable[tuple[int, int]]) -> int:
    from pipeline.transfer.checksums import combine_parts

    return combine_parts(parts)
