"""Deterministic pseudo-random file contents of any size, with no file on disk and bounded memory.

Why: the simulator must serve files of tens of GB (chaptered 4K videos) to exercise multipart uploads and resumed
downloads, and a test must know the exact bytes to compare an archived object against. Each 1 MiB block is
generated on its own from a seed derived from (library seed, media id, rendition, item, block index), so any byte
range can be produced without generating what comes before it, and a client that resumes at a wrong offset or
stitches the wrong rendition gets a different checksum.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class ContentKey:
    """Names one served object: an item of a rendition of a medium (e.g. the 2nd `source` chapter of a video)."""

    media_id: str
    rendition: str
    item: int


def _block_seed(seed: int, key: ContentKey, index: int) -> int:
    # `hash()` is salted per process, so derive the seed from a real digest to stay stable across runs.
    material = f"{seed}\0{key.media_id}\0{key.rendition}\0{key.item}\0{index}".encode()
    return int.from_bytes(hashlib.blake2b(material, digest_size=16).digest(), "big")


def block(seed: int, key: ContentKey, index: int) -> bytes:
    """The full BLOCK_SIZE bytes of block `index` (callers slice off what lies past the end of the object)."""
    return random.Random(_block_seed(seed, key, index)).randbytes(BLOCK_SIZE)


def iter_range(seed: int, key: ContentKey, start: int, stop: int, chunk_size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """Bytes [start, stop) of the object, as chunks of at most `chunk_size` bytes (memory stays one block)."""
    position = start
    while position < stop:
        index, offset = divmod(position, BLOCK_SIZE)
        data = block(seed, key, index)
        end_in_block = min(BLOCK_SIZE, offset + (stop - position))
        while offset < end_in_block:
            piece_end = min(end_in_block, offset + chunk_size)
            # A whole block goes out as is; only partial pieces pay for a copy.
            yield data if (offset == 0 and piece_end == BLOCK_SIZE) else data[offset:piece_end]
            position += piece_end - offset
            offset = piece_end


def read(seed: int, key: ContentKey, start: int, stop: int) -> bytes:
    """Bytes [start, stop) in memory; for tests and small objects only."""
    return b"".join(iter_range(seed, key, start, stop))


def sha256(seed: int, key: ContentKey, size: int) -> str:
    """Hex SHA-256 of the whole object, computed by streaming (a 2 GiB object takes a few seconds)."""
    digest = hashlib.sha256()
    for piece in iter_range(seed, key, 0, size):
        digest.update(piece)
    return digest.hexdigest()


def etag(seed: int, key: ContentKey, size: int) -> str:
    """A stable, quoted ETag; cheap (not an MD5 of the body, which S3 does not promise either for big objects)."""
    material = f"{seed}\0{key.media_id}\0{key.rendition}\0{key.item}\0{size}".encode()
    return '"' + hashlib.md5(material, usedforsecurity=False).hexdigest() + '"'
