"""The UploadPart body: a seekable, zero-copy view of the first bytes of a reused part buffer."""

from __future__ import annotations

import hashlib
import io

from pipeline.transfer.buffers import PartBody


def test_reads_are_views_of_the_buffer_not_copies() -> None:
    buf = bytearray(b"abcdefghij" * 3)
    body = PartBody(buf, 25)
    first = body.read(10)
    assert isinstance(first, memoryview)
    assert first.obj is buf  # no copy of the bytes
    assert bytes(first) == b"abcdefghij"
    rest = body.read()
    assert bytes(rest) == bytes(buf[10:25])
    assert body.read(5) == b""  # the end reads as empty, as http.client's send loop expects
    assert len(body) == 25


def test_seek_tell_and_readinto_serve_retries_and_the_signer() -> None:
    buf = bytearray(range(256)) * 4
    body = PartBody(buf, 1000)
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(64), b""):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(bytes(buf[:1000])).hexdigest()
    assert body.tell() == 1000
    assert body.seek(-10, io.SEEK_END) == 990
    target = bytearray(32)
    assert body.readinto(target) == 10
    assert bytes(target[:10]) == bytes(buf[990:1000])
    body.seek(0)
    assert bytes(body.read(3)) == bytes(buf[:3])
    body.close()
    assert body.closed
