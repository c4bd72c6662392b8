"""A small archive in the moto server, made the way the downloader makes one: objects with their metadata and
CRC32C, COMPLETED state records, and the sidecars beside them. Shared by the catalog and restore tests."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline.clock import parse_iso_utc
from pipeline.keys import encode_metadata_value, object_key
from pipeline.messages import DownloadMessage
from pipeline.services.sidecar import SidecarWriter, build_sidecar
from pipeline.state import StateStore
from pipeline.transfer.archive import META_ITEM, META_MEDIA_ID, META_ORIGINAL_FILENAME
from pipeline.transfer.checksums import Checksum, crc32c
from pipeline.transfer.model import CHECKSUM_METADATA_KEY

BUCKET = "gopro-sync-archive-dev"
RUN_ID = "run-seed"


@dataclass(frozen=True)
class Seeded:
    media_id: str
    media_type: str
    captured_at: str
    camera: str
    storage_class: str
    chapters: tuple[str, ...]
    sizes: tuple[int, ...]


ARCHIVE = (
    Seeded("aa01", "video", "2025-06-01T09:00:00Z", "HERO11 Black", "STANDARD", ("GX010001.MP4",), (300_000,)),
    Seeded(
        "aa02",
        "video",
        "2025-07-15T18:30:00Z",
        "HERO9 Black",
        "DEEP_ARCHIVE",
        ("GX010002.MP4", "GX020002.MP4"),
        (400_000, 250_000),
    ),
    Seeded("aa03", "photo", "2024-12-24T12:00:00Z", "HERO9 Black", "GLACIER_IR", ("GOPR0003.JPG",), (200_000,)),
    Seeded("aa04", "video", "2025-07-20T07:00:00Z", "HERO11 Black", "DEEP_ARCHIVE", ("GX010004.MP4",), (150_000,)),
)


def body_of(media_id: str, index: int, size: int) -> bytes:
    return random.Random(f"{media_id}-{index}").randbytes(size)


def seed_archive(s3, state: StateStore, *, bucket: str = BUCKET) -> dict[str, list[str]]:
    """Puts ARCHIVE in the bucket and the table; returns media id -> object keys."""
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    writer = SidecarWriter(s3, bucket)
    keys: dict[str, list[str]] = {}
    for medium in ARCHIVE:
        captured = parse_iso_utc(medium.captured_at)
        sums = []
        for index, (name, size) in enumerate(zip(medium.chapters, medium.sizes, strict=True)):
            key = object_key("gopro", medium.media_id, captured, name)
            data = body_of(medium.media_id, index, size)
            value = Checksum.crc32c(crc32c(data)).value
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                StorageClass=medium.storage_class,
                Metadata={
                    META_MEDIA_ID: medium.media_id,
                    META_ORIGINAL_FILENAME: encode_metadata_value(name),
                    META_ITEM: str(index + 1),
                    CHECKSUM_METADATA_KEY: value,
                },
            )
            keys.setdefault(medium.media_id, []).append(key)
            sums.append(value)
        message = DownloadMessage(
            run_id=RUN_ID,
            correlation_id="seed",
            provider="gopro",
            media_id=medium.media_id,
            filename=medium.chapters[0],
            size=sum(medium.sizes),
            captured_at=medium.captured_at,
            media_type=medium.media_type,
        )
        state.media.claim("gopro", medium.media_id, owner="seed", run_id=RUN_ID, lease_seconds=60)
        folder = keys[medium.media_id][0].rsplit("/", 1)[0] + "/"
        single = len(medium.chapters) == 1
        state.media.complete(
            "gopro",
            medium.media_id,
            owner="seed",
            s3_key=keys[medium.media_id][0] if single else folder,
            size=sum(medium.sizes),
            checksum=Checksum("CRC32C", ",".join(sums)),
            duration_s=1.0,
        )
        objects = [
            writer.archived(key, size=size, crc32c=value)
            for key, size, value in zip(keys[medium.media_id], medium.sizes, sums, strict=True)
        ]
        document = build_sidecar(message, objects, None)
        document["listing"]["camera_model"] = medium.camera
        writer.put(document)
    return keys
