"""Part-size arithmetic under S3's multipart limits.

S3 allows at most 10,000 parts, each 5 MiB to 5 GiB (the last may be smaller), and objects up to 5 TiB. The
configured part size is a throughput/memory choice; for a file so big that it would need more than 10,000 parts
the part size grows to ceil(size / 10,000), rounded up to a whole MiB so part boundaries stay easy to reason
about (and identical between a transfer and its resume).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import SyncError

MIB = 1024 * 1024
GIB = 1024 * MIB
TIB = 1024 * GIB
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * GIB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TIB


class ObjectTooLarge(SyncError, ValueError):
    """More than S3's 5 TiB object limit: permanent, retrying cannot make it fit."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def choose_part_size(size: int | None, configured: int) -> int:
    """Smallest part size >= `configured` (and >= 5 MiB) that fits `size` in 10,000 parts, in whole MiB.

    With `size` unknown the configured size is used (rounded to whole MiB); the engine then refuses a stream that
    outgrows 10,000 parts instead of guessing.
    """
    if configured <= 0:
        raise ValueError("part size must be positive")
    if size is not None and size < 0:
        raise ValueError("size must be >= 0")
    if size is not None and size > MAX_OBJECT_SIZE:
        raise ObjectTooLarge(f"{size} bytes is more than S3's {MAX_OBJECT_SIZE}-byte object limit")
    wanted = max(configured, MIN_PART_SIZE)
    if size is not None:
        wanted = max(wanted, _ceil_div(size, MAX_PARTS))
    part_size = _ceil_div(wanted, MIB) * MIB
    if part_size > MAX_PART_SIZE:  # only reachable with a configured size above 5 GiB
        raise ValueError(f"part size {part_size} is above S3's {MAX_PART_SIZE}-byte limit")
    return part_size


@dataclass(frozen=True)
class PartRange:
    """Part `number` (1-based) covers bytes [start, start + length) of the source."""

    number: int
    start: int
    length: int

    @property
    def end(self) -> int:
        """Inclusive last byte, as an HTTP Range header wants it."""
        return self.start + self.length - 1


def part_count(size: int, part_size: int) -> int:
    return max(1, _ceil_div(size, part_size))


def part_range(number: int, part_size: int, size: int | None) -> PartRange:
    """The range of part `number`; with `size` None the part is assumed full (the stream decides its end)."""
    start = (number - 1) * part_size
    length = part_size if size is None else max(0, min(part_size, size - start))
    return PartRange(number, start, length)


def plan_parts(size: int, part_size: int) -> list[PartRange]:
    """All parts of an object of known `size` (a 0-byte object is one empty part)."""
    return [part_range(n, part_size, size) for n in range(1, part_count(size, part_size) + 1)]
