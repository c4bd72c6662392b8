"""The transfer engine end to end against LocalStack's S3, which checks every CRC32C it is sent.

A multi-part object streamed from a local HTTP server must arrive byte for byte, with S3's own FULL_OBJECT
CRC32C equal to the engine's and to a reference computed over the source bytes; a small file goes in one
PutObject whose CRC32C S3 checks too. On moto the same assertions hold even when the engine's checksums are
wrong (see test_s3_checksums.py); here S3 would have refused the upload.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from awscrt.checksums import crc32c as reference_crc32c

from pipeline.transfer import CHECKSUM_METADATA_KEY, Checksum
from tests.emulators.conftest import LocalStackAws
from tests.emulators.test_s3_checksums import KEY, run_engine
from tests.integration.transfer.conftest import MIB, ContentServer

pytestmark = [pytest.mark.integration, pytest.mark.localstack]


@pytest.fixture
def s3(localstack_aws: LocalStackAws) -> Any:
    return localstack_aws.s3()


@pytest.fixture
def bucket(localstack_aws: LocalStackAws, s3: Any) -> str:
    return localstack_aws.bucket(s3)


def stored(s3: Any, bucket: str) -> bytes:
    # ChecksumMode ENABLED: botocore also checks the body against S3's FULL_OBJECT CRC32C as it reads it.
    return s3.get_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")["Body"].read()


def test_a_multipart_object_arrives_byte_exact_with_its_crc32c(
    s3: Any, bucket: str, content_server: ContentServer
):
    content = content_server.serve(23 * MIB + 123, seed=7)
    expected = Checksum.crc32c(reference_crc32c(content))

    result = run_engine(s3, content_server, bucket, KEY)

    assert (result.multipart, result.parts, result.size) == (True, 5, len(content))
    assert result.checksum == expected
    assert hashlib.sha256(stored(s3, bucket)).digest() == hashlib.sha256(content).digest()
    head = s3.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32C"], head["ChecksumType"]) == (expected.value, "FULL_OBJECT")
    assert head["ContentLength"] == len(content)
    assert head["ContentType"] == "video/mp4"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_small_object_is_one_put_whose_crc32c_s3_checked(s3: Any, bucket: str, content_server: ContentServer):
    content = content_server.serve(3 * MIB + 11, seed=3)
    expected = Checksum.crc32c(reference_crc32c(content))

    result = run_engine(s3, content_server, bucket, KEY)

    assert (result.multipart, result.parts, result.checksum) == (False, 1, expected)
    assert stored(s3, bucket) == content
    head = s3.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == expected.value
    assert head["Metadata"][CHECKSUM_METADATA_KEY] == expected.value
