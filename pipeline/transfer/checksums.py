"""CRC32C for parts and for the whole object, computed once over the bytes as they stream through.

Why CRC32C: S3 verifies it on every UploadPart/PutObject when we send it (a corrupted part is refused), it can
check a FULL_OBJECT CRC32C of a multipart object at completion, and awscrt computes it in C at several GB/s.

Why combine instead of one running CRC: parts arrive out of order from parallel ranged GETs. A running CRC
would force the engine to serialise hashing in byte order (holding finished parts until their predecessors
arrive, i.e. more memory). `crc32c_combine(crc(A), crc(B), len(B)) == crc(A + B)`, so each part's CRC is computed
once by the thread that fetched it, and the whole-object value is folded in part order at the end in
O(parts x log(part_size)). A checkpoint therefore only needs the per-part CRCs, never a running state.
awscrt ships a C combine; the pure-Python zlib-style GF(2) version below is the fallback and the reference the
unit tests hold both to.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from awscrt import checksums as _crt

CRC32C_POLY_REFLECTED = 0x82F63B78
ALGORITHM = "CRC32C"


def crc32c(data: bytes | bytearray | memoryview, previous: int = 0) -> int:
    """CRC32C of `data`, continuing from `previous` (the CRC of the bytes before it)."""
    return _crt.crc32c(data, previous)


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    index = 0
    while vector:
        if vector & 1:
            total ^= matrix[index]
        vector >>= 1
        index += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, row) for row in matrix]


def crc32c_combine_py(crc1: int, crc2: int, len2: int) -> int:
    """CRC32C of A+B from crc(A), crc(B) and len(B): zlib's crc32_combine (GF(2) matrices), Castagnoli polynomial.

    The operator for "append one zero bit" is a 32x32 matrix over GF(2); squaring it repeatedly gives the
    operators for 2, 4, 8, ... zero bits, and the bits of len2 pick which ones to apply to crc1.
    """
    if len2 < 0:
        raise ValueError("len2 must be >= 0")
    if len2 == 0:
        return crc1
    odd = [CRC32C_POLY_REFLECTED] + [1 << n for n in range(31)]  # one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # first pass: one zero byte
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """As `crc32c_combine_py`, in C when the installed awscrt has it (it does from 0.27)."""
    combine = getattr(_crt, "combine_crc32c", None)
    if combine is None:  # pragma: no cover - older awscrt
        return crc32c_combine_py(crc1, crc2, len2)
    if len2 < 0:
        raise ValueError("len2 must be >= 0")
    return int(combine(crc1, crc2, len2))


def combine_parts(parts: Iterable[tuple[int, int]]) -> int:
    """Whole-object CRC32C from (crc32c, size) of consecutive parts, in order."""
    total = 0
    for crc, size in parts:
        total = crc32c_combine(total, crc, size)
    return total


def to_base64(value: int) -> str:
    """S3's wire format for a CRC32C: base64 of the 4 big-endian bytes."""
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")


def from_base64(text: str) -> int:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 4:
        raise ValueError("a CRC32C is 4 bytes")
    return int.from_bytes(raw, "big")


@dataclass(frozen=True)
class Checksum:
    """A whole-object checksum: `value` in S3's base64 form (what HeadObject with ChecksumMode returns)."""

    algorithm: str
    value: str

    @classmethod
    def crc32c(cls, value: int) -> Checksum:
        return cls(ALGORITHM, to_base64(value))

    @property
    def hex(self) -> str:
        return base64.b64decode(self.value).hex()

    def __str__(self) -> str:
        return f"{self.algorithm.lower()}:{self.value}"
