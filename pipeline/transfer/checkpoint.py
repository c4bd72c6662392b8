"""The state needed to continue a multipart upload in a later invocation: typed in code, plain JSON when stored.

Why per-part CRCs and no running checksum: the whole-object CRC32C is folded from the parts' CRCs in order
(`checksums.combine_parts`), so whatever order parts finished in, and whether the transfer was parallel or
sequential, the parts list is the complete checksum state.

Size: about 60 bytes per part in JSON. A DynamoDB item holds 400 KB, so up to ~6,000 parts fit comfortably; with
the default 8 MiB parts a 4 GB video has 477 parts. Numbers may come back from DynamoDB as `Decimal`;
`from_json` accepts that. The JSON form is what the state store keeps (its shape must not change: records
written by an older release must still resume).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.transfer.checksums import combine_parts

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class CompletedPart:
    number: int
    etag: str
    crc32c: int
    size: int


@dataclass(frozen=True)
class MultipartCheckpoint:
    bucket: str
    key: str
    upload_id: str
    part_size: int
    size: int | None  # None: the source announced no size (sequential stream)
    parts: tuple[CompletedPart, ...] = ()
    checksum_type: str = "FULL_OBJECT"
    source_etag: str | None = field(default=None)

    @property
    def bytes_done(self) -> int:
        return sum(p.size for p in self.parts)

    def prefix_crc32c(self) -> tuple[int, int] | None:
        """(crc32c, length) of the contiguous run of parts from part 1, or None if part 1 is missing."""
        run: list[tuple[int, int]] = []
        for expected, part in enumerate(sorted(self.parts, key=lambda p: p.number), start=1):
            if part.number != expected:
                break
            run.append((part.crc32c, part.size))
        if not run:
            return None
        return combine_parts(run), sum(size for _crc, size in run)

    def to_json(self) -> dict[str, Any]:
        """The JSON-able mapping stored in DynamoDB."""
        return {
            "version": CHECKPOINT_VERSION,
            "bucket": self.bucket,
            "key": self.key,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "size": self.size,
            "checksum_type": self.checksum_type,
            "source_etag": self.source_etag,
            # Compact rows [number, etag, crc32c, size]: a checkpoint is rewritten to DynamoDB at every deadline.
            "parts": [[p.number, p.etag, p.crc32c, p.size] for p in sorted(self.parts, key=lambda p: p.number)],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MultipartCheckpoint:
        """Parse what `to_json` produced; ValueError on anything else (a corrupted record must not resume)."""
        try:
            for name in ("bucket", "key", "upload_id"):
                if not isinstance(data[name], str) or not data[name]:
                    raise TypeError(f"{name} must be a non-empty string")
            version = int(data["version"])
            if version != CHECKPOINT_VERSION:
                raise ValueError(f"unsupported checkpoint version {version}")
            parts = tuple(
                CompletedPart(number=int(n), etag=str(etag), crc32c=int(crc), size=int(size))
                for n, etag, crc, size in data["parts"]
            )
            size = data.get("size")
            checkpoint = cls(
                bucket=str(data["bucket"]),
                key=str(data["key"]),
                upload_id=str(data["upload_id"]),
                part_size=int(data["part_size"]),
                size=None if size is None else int(size),
                parts=parts,
                checksum_type=str(data.get("checksum_type") or "FULL_OBJECT"),
                source_etag=None if data.get("source_etag") is None else str(data["source_etag"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed checkpoint: {exc!r}") from None
        numbers = [p.number for p in parts]
        if len(set(numbers)) != len(numbers) or any(n < 1 for n in numbers):
            raise ValueError("malformed checkpoint: duplicate or invalid part numbers")
        if checkpoint.part_size <= 0 or any(p.crc32c < 0 or p.crc32c > 0xFFFFFFFF for p in parts):
            raise ValueError("malformed checkpoint: invalid part size or CRC")
        return checkpoint
