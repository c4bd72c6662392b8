"""The archive adapter: an object already archived for this medium is answered without a byte moved, as the
engine's own result; anything else is transferred."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.providers.base import DownloadSource
from pipeline.transfer import Checksum, S3StreamTransfer, TransferMode
from pipeline.transfer.archive import META_MEDIA_ID, S3FileTransfer
from pipeline.transfer.url_policy import DownloadPolicy
from tests.integration.transfer.conftest import MIB, ContentServer
from tests.integration.transfer.test_engine import Calls, small_parts

pytestmark = pytest.mark.integration

BUCKET = "archive-tests"
KEY = "gopro/2024/05/01/abc/GX010042.MP4"


@pytest.fixture
def s3(aws: Any) -> Any:
    client = aws.client("s3", response_checksum_validation="when_required")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})
    return client


def seam(s3: Any) -> S3FileTransfer:
    engine = S3StreamTransfer(s3, config=small_parts())
    return S3FileTransfer(engine, BUCKET, policy=DownloadPolicy(local_mode=True))


def source(server: ContentServer) -> DownloadSource:
    url = server.url()
    return DownloadSource(url=url, head_url=url, filename="GX010042.MP4", content_type="video/mp4")


def test_an_object_of_this_medium_is_answered_as_already_archived(s3: Any, content_server: ContentServer) -> None:
    content_server.serve(1 * MIB)
    archive = seam(s3)
    first = archive(
        source(content_server),
        key=KEY,
        metadata={META_MEDIA_ID: "abc"},
        deadline=None,
        resume=None,
        on_checkpoint=lambda _cp: None,
        refresh_url=content_server.url,
    )
    assert first.mode is TransferMode.SINGLE
    assert not first.skipped_existing
    calls = Calls(s3)

    again = archive.existing(KEY, "abc", source(content_server))

    assert again is not None
    assert again.skipped_existing
    assert (again.key, again.size, again.bytes_transferred) == (KEY, 1 * MIB, 0)
    assert again.checksum == Checksum("CRC32C", first.checksum.value)
    assert calls.ops["HeadObject"] == 1
    assert calls.ops["PutObject"] == 0


def test_another_mediums_object_or_a_missing_one_is_transferred(s3: Any, content_server: ContentServer) -> None:
    content_server.serve(1 * MIB)
    archive = seam(s3)
    assert archive.existing(KEY, "abc", source(content_server)) is None
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * MIB, Metadata={META_MEDIA_ID: "someone-else"})
    assert archive.existing(KEY, "abc", source(content_server)) is None


def test_an_object_smaller_than_the_source_is_transferred_again(s3: Any, content_server: ContentServer) -> None:
    content_server.serve(1 * MIB)
    s3.put_object(
        Bucket=BUCKET, Key=KEY, Body=b"x" * 10, Metadata={META_MEDIA_ID: "abc"}, ChecksumAlgorithm="CRC32C"
    )
    assert seam(s3).existing(KEY, "abc", source(content_server)) is None


def test_an_object_overwritten_behind_our_back_with_its_metadata_kept_is_transferred_again(
    s3: Any, content_server: ContentServer
) -> None:
    content_server.serve(1 * MIB)
    archive = seam(s3)
    archive(
        source(content_server),
        key=KEY,
        metadata={META_MEDIA_ID: "abc"},
        deadline=None,
        resume=None,
        on_checkpoint=lambda _cp: None,
        refresh_url=content_server.url,
    )
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head["Metadata"].get("checksum-crc32c")  # the single PUT carries the CRC32C it was written with
    # Same size, same metadata (ours, copied along), other bytes: S3's own CRC32C now disagrees with ours.
    s3.put_object(
        Bucket=BUCKET, Key=KEY, Body=b"x" * (1 * MIB), Metadata=head["Metadata"], ChecksumAlgorithm="CRC32C"
    )

    assert archive.existing(KEY, "abc", source(content_server)) is None
