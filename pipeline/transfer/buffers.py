"""Part buffers: a pool that reuses them, and a zero-copy, seekable view of one as an S3 request body.

Why reuse: a transfer has at most `window` parts in memory; reusing their buffers faults their pages in once, not
once per part, and keeps peak RSS at the interpreter plus `window x part_size` (the bench measures it).
"""

from __future__ import annotations

import io
import threading
from typing import Any


class PartBody(io.RawIOBase):
    """A seekable read-only view of the first `length` bytes of a part buffer: the UploadPart/PutObject body.

    Why not the bytearray itself: botocore's CRT signer wraps a non-seekable body in `BytesIO(body)`, which
    copies it (measured: a second copy of every part in flight). A file-like body is streamed from this view as
    is; botocore seeks it back to 0 for its own retries.
    """

    def __init__(self, buf: bytearray, length: int) -> None:
        super().__init__()
        self._view = memoryview(buf)[:length]
        self._pos = 0

    def __len__(self) -> int:
        return len(self._view)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def readinto(self, target: Any) -> int:
        count = min(len(target), len(self._view) - self._pos)
        target[:count] = self._view[self._pos : self._pos + count]
        self._pos += count
        return count

    def read(self, size: int | None = -1) -> memoryview:  # type: ignore[override]
        """A view of the next bytes, not a copy: http.client sends the body in 16 KiB reads, and a `bytes` copy
        of each (the default) was one more allocation and memcpy per byte sent. Senders (`socket.sendall`,
        hashlib, the signer) all take any bytes-like object; an empty view ends the body as b"" would."""
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        data = self._view[self._pos : end]
        self._pos = end
        return data

    def close(self) -> None:
        self._view.release()
        super().close()


class BufferPool:
    """One part-size buffer per part in flight, reused so their pages are faulted in once, not once per part."""

    def __init__(self, part_size: int) -> None:
        self._part_size = part_size
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        with self._lock:
            if self._free:
                return self._free.pop()
        return bytearray(self._part_size)

    def give(self, buf: bytearray) -> None:
        with self._lock:
            self._free.append(buf)
