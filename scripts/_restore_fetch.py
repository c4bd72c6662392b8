"""Downloads one archived object to a local file: parallel ranged reads, resumable, verified by CRC32C.

Why its own module: `scripts/restore.py fetch` is the one place bytes leave the archive for a person's disk, and
what it guarantees is all here. The bytes go into `<name>.part` at their offsets; `<name>.part.json` lists the
ranges already written, so an interrupted fetch (a cut connection, Ctrl-C, a closed laptop) continues where it
stopped. Only once every range is in is the whole file's CRC32C compared with the one recorded when the medium was
archived; a mismatch deletes the partial file and is an error, so a file under its final name is always the
archived original.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline.errors import SyncError
from pipeline.transfer.checksums import Checksum, crc32c

DEFAULT_PART_BYTES = 8 * 1024 * 1024
DEFAULT_WORKERS = 4
READ_CHUNK = 1024 * 1024


class FetchError(SyncError):
    """A fetch that did not produce a verified file."""


class ChecksumMismatch(FetchError):
    pass


def local_name(filename: str, fallback: str) -> str:
    """The original file name, kept as it was, but never a path or a hidden file."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    name = "".join(c for c in name if c.isprintable())
    return name or fallback


def file_crc32c(path: Path) -> str:
    value = 0
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            value = crc32c(chunk, value)
    return Checksum.crc32c(value).value


class RangedFetch:
    """One object into one local file."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        size: int,
        expected_crc32c: str | None,
        target: Path,
        part_bytes: int = DEFAULT_PART_BYTES,
        workers: int = DEFAULT_WORKERS,
        on_part: Callable[[int], None] | None = None,
    ) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key
        self._size = size
        self._expected = expected_crc32c
        self.target = target
        self.partial = target.with_name(target.name + ".part")
        self.progress = target.with_name(target.name + ".part.json")
        self._part_bytes = part_bytes
        self._workers = workers
        self._on_part = on_part
        self._lock = threading.Lock()

    def ranges(self) -> list[tuple[int, int]]:
        return [
            (start, min(start + self._part_bytes, self._size) - 1)
            for start in range(0, self._size, self._part_bytes)
        ]

    def _done(self) -> set[int]:
        """Offsets already written, if the partial file belongs to this object (same key, size, part size)."""
        if not (self.partial.exists() and self.progress.exists()):
            return set()
        try:
            state = json.loads(self.progress.read_text(encoding="utf-8"))
        except ValueError:
            return set()
        if (state.get("key"), state.get("size"), state.get("part_bytes")) != (
            self._key,
            self._size,
            self._part_bytes,
        ):
            return set()
        return {int(offset) for offset in state.get("done", [])}

    def _save(self, done: set[int]) -> None:
        state = {"key": self._key, "size": self._size, "part_bytes": self._part_bytes, "done": sorted(done)}
        scratch = self.progress.with_name(self.progress.name + ".tmp")
        scratch.write_text(json.dumps(state), encoding="utf-8")
        os.replace(scratch, self.progress)

    def _present(self) -> bool:
        if not (self.target.exists() and self.target.stat().st_size == self._size):
            return False
        return self._expected is None or file_crc32c(self.target) == self._expected

    def run(self) -> str:
        """Fetches what is missing, verifies, renames into place; returns 'fetched', 'resumed' or 'present'."""
        if self._present():
            return "present"
        self.target.parent.mkdir(parents=True, exist_ok=True)
        done = self._done()
        resumed = bool(done)
        if not resumed:
            with self.partial.open("wb") as handle:
                handle.truncate(self._size)
            self._save(done)
        todo = [r for r in self.ranges() if r[0] not in done]
        fd = os.open(self.partial, os.O_WRONLY)
        try:

            def one(span: tuple[int, int]) -> None:
                start, end = span
                body = self._s3.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={start}-{end}")[
                    "Body"
                ]
                data = body.read()
                if len(data) != end - start + 1:
                    raise FetchError(f"{self._key}: range {start}-{end} returned {len(data)} bytes")
                os.pwrite(fd, data, start)
                with self._lock:
                    done.add(start)
                    self._save(done)
                if self._on_part:
                    self._on_part(start)

            with ThreadPoolExecutor(max_workers=self._workers) as pool:
                for future in [pool.submit(one, span) for span in todo]:
                    future.result()
        finally:
            os.close(fd)
        actual = file_crc32c(self.partial)
        if self._expected is not None and actual != self._expected:
            self.partial.unlink(missing_ok=True)
            self.progress.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"{self._key}: CRC32C {actual} is not the archived {self._expected}; the bytes were refused"
            )
        os.replace(self.partial, self.target)
        self.progress.unlink(missing_ok=True)
        return "resumed" if resumed else "fetched"
