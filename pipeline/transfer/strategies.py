"""How the bytes move: three strategies, each answering the same questions, picked once by `resolve`.

- `SinglePut`: a known size below `multipart_threshold`: one GET into one buffer, one PutObject.
- `RangedParts`: a known size and a server that may honour Range: each missing part is fetched with its own Range
  GET and uploaded by one of `window` threads; memory is `window x part_size` (buffers are reused), and several
  connections beat one when a CDN caps each connection's bandwidth.
- `SequentialStream`: no size, or a server that ignores Range: one GET read front to back; the reading thread
  fills a part and hands its upload to the pool, with reading plus uploading parts never more than `window`.
As in s3transfer's upload-input resolver, the submission code never switches on a mode string: a strategy that
finds the server ignoring Range raises `RangesIgnored`, and the resolver hands the transfer (with the parts
already uploaded) to the next compatible strategy. In-flight work is bounded by `BoundedExecutor` alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Protocol

from pipeline.errors import SyncError
from pipeline.transfer.checkpoint import CompletedPart
from pipeline.transfer.errors import ChecksumMismatch, SizeMismatch, SourceError
from pipeline.transfer.http_body import SourceStream
from pipeline.transfer.job import TransferJob
from pipeline.transfer.model import TransferMode, TransferResult
from pipeline.transfer.plan import MAX_PARTS, part_range
from pipeline.transfer.source import RangeNotHonoured

log = logging.getLogger(__name__)


class RangesIgnored(SyncError):
    """The server answered a partial Range with the whole body: the next strategy takes over."""


class BoundedExecutor:
    """A thread pool with at most `limit` tasks reserved or running (s3transfer's `BoundedExecutor` habit).

    A slot is reserved before the work it stands for begins (for a sequential stream, before the part is read),
    and released once the task's `on_done` has recorded its outcome, so a failure is seen before the next part
    is started. Leaving the `with` block waits for every task.
    """

    def __init__(self, limit: int, name: str = "transfer") -> None:
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(limit)

    def __enter__(self) -> BoundedExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    def slot(self) -> _Slot:
        """Blocks until a slot is free; the slot is released on exit unless a task was submitted in it."""
        self._slots.acquire()
        return _Slot(self)

    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], on_done: Callable[[Future[Any]], None]
    ) -> None:
        def finished(future: Future[Any]) -> None:
            try:
                on_done(future)
            finally:
                self._slots.release()

        self._pool.submit(fn, *args).add_done_callback(finished)


class _Slot:
    def __init__(self, executor: BoundedExecutor) -> None:
        self._executor = executor
        self._taken = False

    def __enter__(self) -> _Slot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._taken:
            self._executor._slots.release()

    def submit(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Future[Any]], None]) -> None:
        self._executor._submit(fn, args, on_done)
        self._taken = True


class _Outcome:
    """What the finished part tasks reported: the first failure, a stop for the deadline, ignored ranges.

    `cancel_readers`: a failure stops the other parts' reads at once (ranged parts read in the workers). A
    sequential stream is read by the submitting thread itself, which sees the failure before its next part.
    """

    def __init__(self, job: TransferJob, *, cancel_readers: bool) -> None:
        self.job = job
        self._cancel_readers = cancel_readers
        self.failure: BaseException | None = None
        self.deadline = False
        self.ranges_ignored = False
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.failure is not None or self.deadline or self.ranges_ignored

    def collect(self, future: Future[CompletedPart]) -> None:
        try:
            part = future.result()
        except RangeNotHonoured:
            self.ranges_ignored = True
        except BaseException as exc:
            self.failed(exc)
        else:
            self.job.record(part)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.failure is not None:
                return
            if self.job.deadline_casualty(exc):
                self.deadline = True
            else:
                self.failure = exc
                if self._cancel_readers:
                    self.job.cancel.set()

    def finish(self) -> None:
        """Raise the first failure, or stop for the deadline (which raises DeadlineReached)."""
        if self.failure is not None:
            raise self.failure
        if self.deadline:
            self.job.stop_for_deadline()


class Strategy(Protocol):
    mode: TransferMode

    def is_compatible(self, job: TransferJob, *, resuming: bool) -> bool:
        """Whether this strategy can move this source (what the probe said, what is already done)."""
        ...

    def run(self, job: TransferJob) -> TransferResult:
        """Move the missing bytes and return the verified result; RangesIgnored hands over to the next one."""
        ...


class SinglePut:
    mode = TransferMode.SINGLE

    def is_compatible(self, job: TransferJob, *, resuming: bool) -> bool:
        return not resuming and job.size is not None and job.size < job.cfg.multipart_threshold

    def run(self, job: TransferJob) -> TransferResult:
        size = job.size
        assert size is not None
        buf = bytearray(size)
        crc = job.retry(lambda: job.source.read_range(0, size, buf), "GET")
        return job.put(buf, size, crc)


class RangedParts:
    mode = TransferMode.RANGED

    def is_compatible(self, job: TransferJob, *, resuming: bool) -> bool:
        return job.size is not None and job.ranges is not False

    def run(self, job: TransferJob) -> TransferResult:
        count = job.part_count()
        assert count is not None
        outcome = _Outcome(job, cancel_readers=True)
        with BoundedExecutor(job.window) as executor:
            for number in (n for n in range(1, count + 1) if n not in job.done):
                with executor.slot() as slot:
                    if outcome.stopped:
                        break
                    if job.deadline_near():
                        outcome.deadline = True
                        break
                    job.create_upload()  # here, not in the workers: exactly one upload, created by this thread
                    job.save_progress()
                    slot.submit(self._part, job, number, on_done=outcome.collect)
        outcome.finish()
        if outcome.ranges_ignored:
            raise RangesIgnored
        return job.complete()

    @staticmethod
    def _part(job: TransferJob, number: int) -> CompletedPart:
        rng = part_range(number, job.part_size, job.size)
        began = job.clock()
        buf = job.buffers.take()
        try:
            crc = job.retry(lambda: job.source.read_range(rng.start, rng.length, buf), f"GET part {number}")
            part = job.sink.upload_part(number, buf, rng.length, crc)
        finally:
            job.buffers.give(buf)
        job.part_took(job.clock() - began)
        return part


class SequentialStream:
    mode = TransferMode.SEQUENTIAL

    def is_compatible(self, job: TransferJob, *, resuming: bool) -> bool:
        return True  # any source can be read front to back

    def run(self, job: TransferJob) -> TransferResult:
        reader = _SequentialReader(job, try_range=job.ranges is not False)
        outcome = _Outcome(job, cancel_readers=False)
        try:
            with BoundedExecutor(job.window) as executor:  # leaving it waits for the uploads in flight
                single = self._read_parts(job, reader, executor, outcome)
            if single is not None:
                return single
            if not outcome.stopped:
                reader.finish()
        finally:
            reader.close()
        outcome.finish()
        if job.size is None:
            job.learn_size(sum(p.size for p in job.done.values()))
        return job.complete()

    def _read_parts(
        self, job: TransferJob, reader: _SequentialReader, executor: BoundedExecutor, outcome: _Outcome
    ) -> TransferResult | None:
        """Read from the first missing part to the end; a result only if the whole source was one small part."""
        number = min(n for n in range(1, MAX_PARTS + 2) if n not in job.done)
        while True:
            with executor.slot() as slot:  # one part being read, the others uploading: window x part size
                if outcome.stopped:
                    return None
                count = job.part_count()
                if count is not None and number > count:
                    return None
                if number > MAX_PARTS:
                    raise SizeMismatch(f"the source is longer than 10,000 parts of {job.part_size} bytes")
                if number not in job.done and job.deadline_near():
                    outcome.deadline = True
                    return None
                began = job.clock()
                buf = job.buffers.take()
                try:
                    length, crc = job.retry(lambda n=number, b=buf: reader.read_part(n, b), f"GET part {number}")
                except BaseException as exc:
                    job.buffers.give(buf)
                    if job.deadline_casualty(exc):
                        outcome.deadline = True
                        return None
                    raise
                last = length < job.part_size if job.size is None else number * job.part_size >= job.size
                if number in job.done:
                    job.buffers.give(buf)
                    if job.done[number].crc32c != crc or job.done[number].size != length:
                        raise ChecksumMismatch(f"part {number} read again differs from the uploaded part")
                elif length == 0 and number > 1:
                    job.buffers.give(buf)  # the stream ended exactly at a part boundary
                    return None
                elif number == 1 and last and job.sink.upload_id is None:
                    reader.finish()
                    job.check_size(length, "the source")
                    return job.put(buf, length, crc)
                else:
                    job.crcs[number] = crc
                    job.create_upload()
                    job.save_progress()
                    slot.submit(self._upload, job, number, buf, length, crc, began, on_done=outcome.collect)
            if last:
                return None
            number += 1

    @staticmethod
    def _upload(
        job: TransferJob, number: int, buf: bytearray, length: int, crc: int, began: float
    ) -> CompletedPart:
        try:
            part = job.sink.upload_part(number, buf, length, crc)
        finally:
            job.buffers.give(buf)
        job.part_took(job.clock() - began)
        return part


class _SequentialReader:
    """Keeps one GET stream positioned at the next part; after a failure, re-opens it where it is needed.

    A server that honours `Range: bytes=N-` resumes at the part; one that does not starts again at byte 0, and
    the bytes before the part are read through and checked against the CRCs of the parts already read.
    """

    def __init__(self, job: TransferJob, try_range: bool) -> None:
        self.job = job
        self.try_range = try_range
        self.stream: SourceStream | None = None

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def read_part(self, number: int, buf: bytearray) -> tuple[int, int]:
        job = self.job
        start = (number - 1) * job.part_size
        try:
            if self.stream is None or self.stream.position != start:
                self._open(start, buf)
            assert self.stream is not None
            want = job.part_size if job.size is None else part_range(number, job.part_size, job.size).length
            length, crc = job.source.stream_read(self.stream, memoryview(buf)[:want])
            if job.size is not None and length != want:
                raise SizeMismatch(
                    f"stream ended {want - length} bytes into part {number} early",
                    expected=want,
                    actual=length,
                    transient=True,
                )
            return length, crc
        except BaseException:
            self.close()
            raise

    def _open(self, start: int, scratch: bytearray) -> None:
        job = self.job
        self.close()
        stream = self.stream = job.source.open_stream(start, try_range=self.try_range)
        if stream.total is not None and job.size is None:
            job.learn_size(stream.total)
        if job.size is None and not stream.framed:
            if job.req.expected_size is None and job.cfg.require_verifiable_size:
                raise SourceError("the source gives no size and an unframed body: a cut could not be detected")
            log.warning("source body has no length; relying on expected_size to detect truncation")
        if stream.position < start:
            log.info(
                "source restarted at byte 0; reading through %d bytes to reach byte %d", stream.position, start
            )
        while stream.position < start:
            number = stream.position // job.part_size + 1
            length, crc = job.source.stream_read(stream, memoryview(scratch)[: job.part_size])
            if length != job.part_size:
                raise SizeMismatch(f"stream ended before byte {start}", transient=True)
            known = job.crcs.get(number)
            if known is not None and known != crc:
                raise ChecksumMismatch(f"part {number} read again differs from the first read: the source changed")

    def finish(self) -> None:
        """After the last part: a source with a known size must have no bytes left."""
        if self.stream is not None and self.job.size is not None and not self.stream.at_end():
            raise SizeMismatch(
                f"the source has more than the announced {self.job.size} bytes", expected=self.job.size
            )


def resolve(job: TransferJob, *, resuming: bool) -> Iterator[Strategy]:
    """The compatible strategies, best first; asked again after each one that gives up."""
    for strategy in (SinglePut(), RangedParts(), SequentialStream()):
        if strategy.is_compatible(job, resuming=resuming):
            yield strategy
