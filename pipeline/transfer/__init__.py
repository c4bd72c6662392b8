"""Streaming transfer engine: one HTTP(S) source into one S3 object, verified, bounded in memory, resumable.

A plain service with no knowledge of providers or pipeline state: the downloader handler resolves the URL,
decides the key and metadata, stores checkpoints and results; this package moves and verifies the bytes.
"""

from pipeline.transfer.checkpoint import CompletedPart, MultipartCheckpoint
from pipeline.transfer.checksums import Checksum, crc32c, crc32c_combine
from pipeline.transfer.engine import (
    CHECKSUM_METADATA_KEY,
    S3StreamTransfer,
    TransferConfig,
    TransferRequest,
    TransferResult,
)
from pipeline.transfer.errors import (
    ChecksumMismatch,
    DeadlineReached,
    SinkError,
    SizeMismatch,
    SourceError,
    TransferError,
)
from pipeline.transfer.plan import choose_part_size
from pipeline.transfer.redact import redact_url
from pipeline.transfer.source import make_session

__all__ = [
    "CHECKSUM_METADATA_KEY",
    "Checksum",
    "ChecksumMismatch",
    "CompletedPart",
    "DeadlineReached",
    "MultipartCheckpoint",
    "S3StreamTransfer",
    "SinkError",
    "SizeMismatch",
    "SourceError",
    "TransferConfig",
    "TransferError",
    "TransferRequest",
    "TransferResult",
    "choose_part_size",
    "crc32c",
    "crc32c_combine",
    "make_session",
    "redact_url",
]
