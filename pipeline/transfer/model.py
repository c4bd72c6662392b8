"""The engine's vocabulary: its tuning, what to copy where, and the one result type of a transfer.

`TransferResult` is what every path returns, the archive adapter's "already in S3" answer included, so the
downloader reads one type whatever happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.config import Settings
from pipeline.observability.redaction import redact_url
from pipeline.retry import RetryPolicy
from pipeline.transfer.checksums import Checksum
from pipeline.transfer.plan import MIB, MIN_PART_SIZE

FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"
# Object metadata key for the whole-object CRC32C of single-PUT objects (multipart objects carry it as S3's own
# FULL_OBJECT checksum, since metadata must be fixed before the upload starts).
CHECKSUM_METADATA_KEY = "checksum-crc32c"


class TransferMode(StrEnum):
    """How the bytes moved: the strategy that produced the result."""

    SINGLE = "single"  # one GET, one PutObject
    RANGED = "ranged"  # parallel Range GETs, one UploadPart each
    SEQUENTIAL = "sequential"  # one stream read front to back
    EXISTING = "existing"  # already in S3: nothing moved


@dataclass(frozen=True)
class TransferConfig:
    """Tuning of the engine. Defaults measured with `bench/transfer_bench.py` (numbers in bench/README.md).

    8 MiB parts x 8 in flight: peak RSS is the interpreter (~63 MiB with boto3) plus window x part size
    (64 MiB): 130 MiB for 1 GiB, well inside the 256 MiB budget and a 1024 MB Lambda. Uncapped on loopback every
    part-size/window pair from 8 to 32 MiB and 2 to 8 was within noise of each other; with a 10 MB/s
    per-connection cap (how CDNs throttle one download) throughput grows with the window: 16 MiB x 4 reached
    35 MiB/s, 8 MiB x 8 66 MiB/s for the same 64 MiB of buffers. The price is twice the requests per GiB (128
    UploadParts, about $0.0006 per GiB at S3's PUT price), which the shorter Lambda time outweighs.
    """

    part_size: int = 8 * MIB
    window: int = 8
    multipart_threshold: int = 16 * MIB
    # Hard cap on part buffers: a huge object whose parts must grow beyond part_size gets a smaller window.
    max_buffer_bytes: int = 128 * MIB
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    read_chunk: int = 1 * MIB
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=20.0))
    checksum_type: str = "auto"  # "auto" (FULL_OBJECT when botocore knows it), "FULL_OBJECT" or "COMPOSITE"
    deadline_margin_s: float = 2.0
    # Before any part has finished, a part is assumed to take part_size / this long (deadline planning only).
    assumed_throughput_bytes_per_s: float = 4 * MIB
    # A source with no size and an unframed (close-delimited) body cannot show truncation; refuse it unless the
    # caller gives an expected_size to hold it to.
    require_verifiable_size: bool = True
    max_url_refreshes: int = 1
    # Progress checkpoints (the upload id and the parts so far, handed to `on_checkpoint`): at the upload's
    # creation, then every this many parts or seconds, whichever comes first. A successor after a kill resumes
    # from them; the write cost is bounded (a 4 GB video in 8 MiB parts: about 120 writes of at most ~30 KB).
    checkpoint_every_parts: int = 4
    checkpoint_every_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE:
            raise ValueError("part_size must be at least 5 MiB (S3's minimum for all but the last part)")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if not 1 <= self.multipart_threshold <= 5 * 1024 * MIB:
            raise ValueError("multipart_threshold must be between 1 byte and 5 GiB (S3's single-PUT limit)")
        if self.max_buffer_bytes < self.part_size:
            raise ValueError("max_buffer_bytes must hold at least one part")
        if self.connect_timeout <= 0 or self.read_timeout <= 0 or self.read_chunk <= 0:
            raise ValueError("timeouts and read_chunk must be positive")
        if self.checksum_type not in ("auto", FULL_OBJECT, COMPOSITE):
            raise ValueError("checksum_type must be auto, FULL_OBJECT or COMPOSITE")
        if self.checkpoint_every_parts < 1 or self.checkpoint_every_seconds <= 0:
            raise ValueError("checkpoints must come every part or more, and every positive number of seconds")
        if self.assumed_throughput_bytes_per_s <= 0 or self.deadline_margin_s < 0:
            raise ValueError("assumed throughput must be positive and the deadline margin >= 0")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TransferConfig:
        """Part size, threshold, timeouts and retries from the pipeline settings; the rest from `overrides`."""
        values: dict[str, Any] = {
            "part_size": settings.part_size_bytes,
            "multipart_threshold": settings.multipart_threshold_bytes,
            "connect_timeout": settings.http_connect_timeout,
            "read_timeout": settings.http_read_timeout,
            "retry": RetryPolicy.from_settings(settings),
        }
        values.update(overrides)
        values["max_buffer_bytes"] = max(values.get("max_buffer_bytes", cls.max_buffer_bytes), values["part_size"])
        return cls(**values)


@dataclass(frozen=True)
class TransferRequest:
    """What to copy where. Provider-agnostic: any HTTP(S) URL; the URLs are kept out of `repr` (secrets)."""

    url: str = field(repr=False)
    bucket: str
    key: str
    expected_size: int | None = None
    content_type: str = "application/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    # A separate URL for HEAD (pre-signed URLs are signed for one method, so GoPro gives a `head` URL).
    head_url: str | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        """The URL without its query string: what logs may show."""
        return redact_url(self.url)


@dataclass(frozen=True)
class TransferResult:
    bucket: str
    key: str
    size: int
    checksum: Checksum  # always the whole-object CRC32C computed over the bytes we read
    s3_checksum_type: str  # what S3 stored: FULL_OBJECT (single PUT too) or COMPOSITE
    parts: int
    multipart: bool
    mode: TransferMode
    etag: str
    version_id: str | None
    duration_s: float
    time_to_first_byte_s: float | None
    bytes_transferred: int  # uploaded by this call (excludes parts reused from a checkpoint)
    reused_parts: int
    source_requests: int
    url_refreshes: int

    @property
    def throughput_bytes_per_s(self) -> float:
        return self.bytes_transferred / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def skipped_existing(self) -> bool:
        """The object was already in S3 and complete: nothing was transferred."""
        return self.mode is TransferMode.EXISTING

    @classmethod
    def already_in_s3(
        cls, *, bucket: str, key: str, size: int, checksum: Checksum, etag: str, version_id: str | None
    ) -> TransferResult:
        """The result for an object found complete in S3 (see `archive`): no bytes moved, no time spent."""
        return cls(
            bucket=bucket,
            key=key,
            size=size,
            checksum=checksum,
            s3_checksum_type="",
            parts=0,
            multipart=False,
            mode=TransferMode.EXISTING,
            etag=etag,
            version_id=version_id,
            duration_s=0.0,
            time_to_first_byte_s=None,
            bytes_transferred=0,
            reused_parts=0,
            source_requests=0,
            url_refreshes=0,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a log line, a metric, or a DynamoDB record."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "checksum_algorithm": self.checksum.algorithm,
            "checksum": self.checksum.value,
            "s3_checksum_type": self.s3_checksum_type,
            "parts": self.parts,
            "multipart": self.multipart,
            "mode": str(self.mode),
            "etag": self.etag,
            "version_id": self.version_id,
            "duration_s": round(self.duration_s, 3),
            "time_to_first_byte_s": None
            if self.time_to_first_byte_s is None
            else round(self.time_to_first_byte_s, 3),
            "bytes_transferred": self.bytes_transferred,
            "throughput_bytes_per_s": round(self.throughput_bytes_per_s, 1),
            "reused_parts": self.reused_parts,
            "source_requests": self.source_requests,
            "url_refreshes": self.url_refreshes,
        }
