"""The state of one `transfer` call, shared by whichever strategy moves the bytes.

Why one object the strategies read and write: the parts already uploaded (from a checkpoint, or by a strategy
that gave up because the server ignored Range) carry over to the next strategy, and the deadline, the size
checks, the checkpoint and the result are the same whatever the strategy.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pipeline.deadline import Deadline
from pipeline.errors import is_transient
from pipeline.retry import call_with_retry
from pipeline.transfer.buffers import BufferPool
from pipeline.transfer.checkpoint import CompletedPart, MultipartCheckpoint
from pipeline.transfer.checksums import Checksum, combine_parts
from pipeline.transfer.errors import DeadlineReached, SizeMismatch, TransferError
from pipeline.transfer.model import FULL_OBJECT, TransferMode, TransferRequest, TransferResult
from pipeline.transfer.plan import MAX_PARTS, MIB, part_count
from pipeline.transfer.s3_sink import S3Sink
from pipeline.transfer.source import HttpSource

if TYPE_CHECKING:
    from pipeline.transfer.engine import S3StreamTransfer

log = logging.getLogger(__name__)
T = TypeVar("T")


class TransferJob:
    """One object being copied: its source, its sink, its parts so far, its deadline."""

    def __init__(
        self,
        engine: S3StreamTransfer,
        req: TransferRequest,
        *,
        deadline: Deadline | None,
        on_checkpoint: Callable[[MultipartCheckpoint], None] | None,
        refresh_url: Callable[[], str] | None,
    ) -> None:
        config = self.cfg = engine.config
        self.req = req
        self.deadline = deadline
        self.on_checkpoint = on_checkpoint
        self.sleep = engine.sleep
        self.clock = engine.clock
        self.started = self.clock()
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.ttfb: float | None = None
        self._cleanups: list[Callable[[str], None]] = []
        self.source = HttpSource(
            engine.session,
            req.url,
            head_url=req.head_url,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            read_chunk=config.read_chunk,
            allowed_hosts=engine.allowed_hosts,
            refresh_url=refresh_url,
            max_refreshes=config.max_url_refreshes,
            cancel=self.cancel,
            on_first_byte=self._first_byte,
        )
        self.sink = S3Sink(
            engine.s3, req, checksum_type=engine.s3_checksum_type, register_cleanup=self._cleanups.append
        )
        self.size: int | None = None
        self.part_size = config.part_size
        self.window = config.window
        self.ranges: bool | None = None  # what the probe said about Range support (False: said no)
        self.done: dict[int, CompletedPart] = {}
        self.crcs: dict[int, int] = {}  # every part read so far, to verify bytes read again after a restart
        self.durations: deque[float] = deque(maxlen=8)
        self.reused = 0
        self.mode = TransferMode.SINGLE
        self.source_etag: str | None = None
        self.buffers = BufferPool(self.part_size)
        self._saved_parts = -1  # parts in the last progress checkpoint saved (-1: none yet)
        self._saved_at = self.started

    # --- failure cleanup -----------------------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        """Stop every reader and run the registered cleanups (the multipart upload's abort)."""
        self.cancel.set()
        for cleanup in reversed(self._cleanups):
            cleanup(reason)

    # --- timing and retries --------------------------------------------------------------------------------

    def _first_byte(self) -> None:
        with self.lock:
            if self.ttfb is None:
                self.ttfb = self.clock() - self.started

    def retry(self, fn: Callable[[], T], describe: str) -> T:
        return call_with_retry(
            fn,
            policy=self.cfg.retry,
            retry_on=(TransferError,),
            give_up=lambda exc: not is_transient(exc) or self.cancel.is_set(),
            sleep=self.sleep,
            deadline=self.deadline,
            describe=f"{describe} of {self.source.display_url}",
        )

    def _part_estimate(self) -> float:
        """The slowest of the last few parts (fetch + upload), or a guess before any has finished."""
        with self.lock:
            if self.durations:
                return max(self.durations)
        return self.part_size / self.cfg.assumed_throughput_bytes_per_s

    def part_took(self, seconds: float) -> None:
        with self.lock:
            self.durations.append(seconds)

    def deadline_near(self) -> bool:
        """Whether a part started now might not finish before the deadline (less the margin)."""
        if self.deadline is None:
            return False
        return self.deadline.near(self._part_estimate() + self.cfg.deadline_margin_s)

    def deadline_casualty(self, exc: BaseException) -> bool:
        """A transient failure at the deadline is a reason to checkpoint, not to throw the upload away."""
        return isinstance(exc, TransferError) and exc.transient and self.deadline_near()

    # --- sizes and parts -----------------------------------------------------------------------------------

    def check_size(self, actual: int | None, what: str) -> None:
        expected = self.req.expected_size
        if expected is not None and actual is not None and expected != actual:
            raise SizeMismatch(
                f"{what} is {actual} bytes, the provider said {expected}", expected=expected, actual=actual
            )

    def learn_size(self, size: int) -> None:
        self.check_size(size, "the source")
        if size > MAX_PARTS * self.part_size:
            raise SizeMismatch(f"{size} bytes do not fit 10,000 parts of {self.part_size}", actual=size)
        self.size = size
        self.source.size = size

    def part_count(self) -> int | None:
        """Parts of the object (None while its size is unknown)."""
        return None if self.size is None else part_count(self.size, self.part_size)

    def all_done(self) -> bool:
        count = self.part_count()
        return count is not None and all(n in self.done for n in range(1, count + 1))

    def record(self, part: CompletedPart) -> None:
        with self.lock:
            self.done[part.number] = part
            self.crcs[part.number] = part.crc32c

    def create_upload(self) -> str:
        """The multipart upload, created on first use by the strategy's own thread (exactly one per transfer)."""
        if self.sink.upload_id is None:
            self.sink.create()
            self.save_progress(force=True)  # known from its first moment: a kill now leaves nothing unknown
            log.info(
                "multipart upload started for s3://%s/%s: %s parts of %d bytes, window %d, %s",
                self.req.bucket,
                self.req.key,
                "?" if self.size is None else self.part_count(),
                self.part_size,
                self.window,
                self.mode,
            )
        return str(self.sink.upload_id)

    # --- checkpoints ---------------------------------------------------------------------------------------

    def checkpoint(self) -> MultipartCheckpoint:
        """The upload and the parts done so far, as a successor needs them to resume."""
        assert self.sink.upload_id is not None
        with self.lock:
            parts = tuple(self.done[n] for n in sorted(self.done))
        return MultipartCheckpoint(
            bucket=self.req.bucket,
            key=self.req.key,
            upload_id=self.sink.upload_id,
            part_size=self.part_size,
            size=self.size,
            parts=parts,
            checksum_type=self.sink.checksum_type,
            source_etag=self.source_etag,
        )

    def save_progress(self, *, force: bool = False) -> None:
        """A progress checkpoint, when one is due (every few parts or seconds, see `TransferConfig`).

        Called by the strategy's own thread between parts, so one write at a time and none from the part workers.
        Best effort: a write that fails is logged and tried again at the next due point (the transfer itself is
        fine; only a kill before the next one would cost the parts since the last).
        """
        if self.on_checkpoint is None or self.sink.upload_id is None:
            return
        with self.lock:
            count = len(self.done)
        fresh = count - self._saved_parts
        now = self.clock()
        due = fresh >= self.cfg.checkpoint_every_parts or (
            fresh > 0 and now - self._saved_at >= self.cfg.checkpoint_every_seconds
        )
        if not (force or due):
            return
        try:
            self.on_checkpoint(self.checkpoint())
        except Exception as exc:
            log.warning("could not save a progress checkpoint of %s: %s", self.req.key, exc)
            return
        self._saved_parts, self._saved_at = count, now

    # --- endings -------------------------------------------------------------------------------------------

    def stop_for_deadline(self) -> None:
        """Save the checkpoint and raise DeadlineReached; the upload is kept for the next invocation."""
        if self.sink.upload_id is None:
            raise DeadlineReached(None)
        checkpoint = self.checkpoint()
        if self.on_checkpoint is not None:
            self.on_checkpoint(checkpoint)  # if saving fails, the run aborts: an upload nobody can resume is waste
        log.info(
            "deadline: stopping s3://%s/%s after %d part(s), upload kept for resume",
            self.req.bucket,
            self.req.key,
            len(checkpoint.parts),
        )
        raise DeadlineReached(checkpoint)

    def put(self, buf: bytearray, length: int, crc: int) -> TransferResult:
        resp = self.sink.put(buf, length, crc)
        return self.result(length, crc, resp, parts=1, multipart=False, s3_type=FULL_OBJECT)

    def complete(self) -> TransferResult:
        parts = [self.done[n] for n in sorted(self.done)]
        total = sum(p.size for p in parts)
        if [p.number for p in parts] != list(range(1, len(parts) + 1)):
            raise SizeMismatch("parts are missing; refusing to complete")
        if self.size is not None and total != self.size:
            raise SizeMismatch(f"uploaded {total} bytes of {self.size}", expected=self.size, actual=total)
        self.check_size(total, "the uploaded object")
        whole = combine_parts((p.crc32c, p.size) for p in parts)
        s3_type = self.sink.checksum_type
        resp = self.sink.complete(parts, whole)
        return self.result(total, whole, resp, parts=len(parts), multipart=True, s3_type=s3_type)

    def result(
        self, size: int, crc: int, resp: Mapping[str, Any], *, parts: int, multipart: bool, s3_type: str
    ) -> TransferResult:
        result = TransferResult(
            bucket=self.req.bucket,
            key=self.req.key,
            size=size,
            checksum=Checksum.crc32c(crc),
            s3_checksum_type=s3_type,
            parts=parts,
            multipart=multipart,
            mode=self.mode,
            etag=str(resp.get("ETag", "")),
            version_id=resp.get("VersionId"),
            duration_s=self.clock() - self.started,
            time_to_first_byte_s=self.ttfb,
            bytes_transferred=self.sink.bytes_uploaded,
            reused_parts=self.reused,
            source_requests=self.source.requests,
            url_refreshes=self.source.refreshes,
        )
        log.info(
            "transfer done s3://%s/%s: %d bytes, %d part(s), %s, %.1fs, %.1f MiB/s, crc32c %s",
            result.bucket,
            result.key,
            result.size,
            result.parts,
            result.mode,
            result.duration_s,
            result.throughput_bytes_per_s / MIB,
            result.checksum.value,
        )
        return result
