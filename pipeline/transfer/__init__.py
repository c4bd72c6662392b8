"""Streaming transfer engine: one HTTP(S) source into one S3 object, verified, bounded in memory, resumable.

Everything about bytes from a URL into S3 and nothing about pipeline state: the downloader resolves the URL,
decides the key and metadata, and stores checkpoints and results; this package checks the URL (`url_policy`)
and, as the download session connects, the addresses its host resolves to (`safe_connect`), finds an object
already archived (`archive`), and moves and verifies the bytes (`engine`).
"""

from pipeline.transfer.checkpoint import CompletedPart, MultipartCheckpoint
from pipeline.transfer.checksums import Checksum, crc32c, crc32c_combine
from pipeline.transfer.engine import S3StreamTransfer
from pipeline.transfer.errors import (
    ChecksumMismatch,
    DeadlineReached,
    SinkError,
    SizeMismatch,
    SourceError,
    TransferError,
)
from pipeline.transfer.model import (
    CHECKSUM_METADATA_KEY,
    TransferConfig,
    TransferMode,
    TransferRequest,
    TransferResult,
)
from pipeline.transfer.plan import choose_part_size
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
    "TransferMode",
    "TransferRequest",
    "TransferResult",
    "choose_part_size",
    "crc32c",
    "crc32c_combine",
    "make_session",
]
