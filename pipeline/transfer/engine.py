"""Stream one remote file into S3 without ever holding the whole file: `S3StreamTransfer.transfer`.

How it works, and why:
- The source is probed once (HEAD on the `head` URL, else a one-byte ranged GET) for its size, Range support
  and ETag. Below `multipart_threshold`, a single PutObject (the body is at most the threshold in memory).
- Above it, a multipart upload whose part size fits the object in 10,000 parts (`plan.choose_part_size`).
  With a known size and Range support, each part is fetched with its own `Range` GET and uploaded with
  UploadPart by one of `window` threads: memory is `window x part_size` (buffers are reused, never more than
  `window` exist), and several connections beat one when a CDN caps each connection's bandwidth.
- A server that ignores Range (200 to a ranged GET), or a source without a size, is read as one sequential
  stream; the reading thread fills a part, hands its upload to the pool and reads the next, with at most
  `window - 1` uploads in flight, so memory stays `window x part_size`.
- Every part's CRC32C is computed once while its bytes arrive and sent as the part's `ChecksumCRC32C`, so S3
  refuses a part whose bytes changed on the way. The whole-object CRC32C is folded from the part CRCs
  (`checksums`) and sent at completion with ChecksumType FULL_OBJECT (S3 checks it against the parts), or, with
  a botocore too old for that, S3 keeps a composite checksum and the result still carries our full-object value.
- Byte counts are checked at every level: each range, the announced total, the caller's `expected_size`.
- A transient source failure (reset, 5xx, timeout, body cut short) is retried per part with `call_with_retry`;
  a 403 refreshes the URL once; S3 calls rely on botocore's standard retry mode. Giving up aborts the multipart
  upload (no invisible, billed leftovers) and raises a `TransferError`.
- With a `deadline`, no part is started that would not finish before it (estimated from the slowest recent
  part); in-flight parts finish, `on_checkpoint` receives a JSON-able `MultipartCheckpoint`, the upload is kept,
  and `DeadlineReached` is raised. `transfer(..., resume=checkpoint)` checks the parts with ListParts and only
  fetches what is missing.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.config import Settings
from pipeline.deadline import Deadline
from pipeline.retry import RetryPolicy, call_with_retry
from pipeline.transfer.checkpoint import CompletedPart, MultipartCheckpoint
from pipeline.transfer.checksums import ALGORITHM, Checksum, combine_parts, to_base64
from pipeline.transfer.errors import (
    ChecksumMismatch,
    DeadlineReached,
    SinkError,
    SizeMismatch,
    SourceError,
    TransferError,
)
from pipeline.transfer.plan import MAX_PARTS, MIB, MIN_PART_SIZE, ObjectTooLarge, choose_part_size, part_range
from pipeline.transfer.redact import describe_exception, redact_url
from pipeline.transfer.source import HttpSource, RangeNotHonoured, SourceInfo, SourceStream, make_session

log = logging.getLogger(__name__)
T = TypeVar("T")

FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"
# Object metadata key for the whole-object CRC32C of single-PUT objects (multipart objects carry it as S3's own
# FULL_OBJECT checksum, since metadata must be fixed before the upload starts).
CHECKSUM_METADATA_KEY = "checksum-crc32c"
_DIGEST_ERRORS = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "InvalidChecksum"}
_TRANSIENT_S3_ERRORS = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"}


@dataclass(frozen=True)
class TransferConfig:
    """Tuning of the engine. Defaults measured with `bench/transfer_bench.py` (numbers in bench/README.md).

    8 MiB parts x 8 in flight: peak RSS is the interpreter (~63 MiB with boto3) plus window x part size
    (64 MiB): 130 MiB for 1 GiB, well inside the 256 MiB budget and a 1024 MB Lambda. Uncapped on loopback every
    part-size/window pair from 8 to 32 MiB and 2 to 8 was within noise of each other; with a 10 MB/s
    per-connection cap (how CDNs throttle one download) throughput grows with the window: 16 MiB x 4 reached
    35 MiB/s, 8 MiB x 8 66 MiB/s for the same 64 MiB of buffers. The price is twice the requests per GiB (128
    UploadParts, about $0.0006 per GiB at S3's PUT price), which the shorter Lambda time outweighs.
    """

    part_size: int = 8 * MIB
    window: int = 8
    multipart_threshold: int = 16 * MIB
    # Hard cap on part buffers: a huge object whose parts must grow beyond part_size gets a smaller window.
    max_buffer_bytes: int = 128 * MIB
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    read_chunk: int = 1 * MIB
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=20.0))
    checksum_type: str = "auto"  # "auto" (FULL_OBJECT when botocore knows it), "FULL_OBJECT" or "COMPOSITE"
    deadline_margin_s: float = 2.0
    # Before any part has finished, a part is assumed to take part_size / this long (deadline planning only).
    assumed_throughput_bytes_per_s: float = 4 * MIB
    # A source with no size and an unframed (close-delimited) body cannot show truncation; refuse it unless the
    # caller gives an expected_size to hold it to.
    require_verifiable_size: bool = True
    max_url_refreshes: int = 1

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE:
            raise ValueError("part_size must be at least 5 MiB (S3's minimum for all but the last part)")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if not 1 <= self.multipart_threshold <= 5 * 1024 * MIB:
            raise ValueError("multipart_threshold must be between 1 byte and 5 GiB (S3's single-PUT limit)")
        if self.max_buffer_bytes < self.part_size:
            raise ValueError("max_buffer_bytes must hold at least one part")
        if self.connect_timeout <= 0 or self.read_timeout <= 0 or self.read_chunk <= 0:
            raise ValueError("timeouts and read_chunk must be positive")
        if self.checksum_type not in ("auto", FULL_OBJECT, COMPOSITE):
            raise ValueError("checksum_type must be auto, FULL_OBJECT or COMPOSITE")
        if self.assumed_throughput_bytes_per_s <= 0 or self.deadline_margin_s < 0:
            raise ValueError("assumed throughput must be positive and the deadline margin >= 0")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TransferConfig:
        """Part size, threshold, timeouts and retries from the pipeline settings; the rest from `overrides`."""
        values: dict[str, Any] = {
            "part_size": settings.part_size_bytes,
            "multipart_threshold": settings.multipart_threshold_bytes,
            "connect_timeout": settings.http_connect_timeout,
            "read_timeout": settings.http_read_timeout,
            "retry": RetryPolicy.from_settings(settings),
        }
        values.update(overrides)
        values["max_buffer_bytes"] = max(values.get("max_buffer_bytes", cls.max_buffer_bytes), values["part_size"])
        return cls(**values)


@dataclass(frozen=True)
class TransferRequest:
    """What to copy where. Provider-agnostic: any HTTP(S) URL; the URLs are kept out of `repr` (secrets)."""

    url: str = field(repr=False)
    bucket: str
    key: str
    expected_size: int | None = None
    content_type: str = "application/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    # A separate URL for HEAD (pre-signed URLs are signed for one method, so GoPro gives a `head` URL).
    head_url: str | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        """The URL without its query string: what logs may show."""
        return redact_url(self.url)


@dataclass(frozen=True)
class TransferResult:
    bucket: str
    key: str
    size: int
    checksum: Checksum  # always the whole-object CRC32C computed over the bytes we read
    s3_checksum_type: str  # what S3 stored: FULL_OBJECT (single PUT too) or COMPOSITE
    parts: int
    multipart: bool
    mode: str  # "single", "ranged" (parallel Range GETs) or "sequential" (one stream)
    etag: str
    version_id: str | None
    duration_s: float
    time_to_first_byte_s: float | None
    bytes_transferred: int  # uploaded by this call (excludes parts reused from a checkpoint)
    reused_parts: int
    source_requests: int
    url_refreshes: int

    @property
    def throughput_bytes_per_s(self) -> float:
        return self.bytes_transferred / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a log line, a metric, or a DynamoDB record."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "checksum_algorithm": self.checksum.algorithm,
            "checksum": self.checksum.value,
            "s3_checksum_type": self.s3_checksum_type,
            "parts": self.parts,
            "multipart": self.multipart,
            "mode": self.mode,
            "etag": self.etag,
            "version_id": self.version_id,
            "duration_s": round(self.duration_s, 3),
            "time_to_first_byte_s": None
            if self.time_to_first_byte_s is None
            else round(self.time_to_first_byte_s, 3),
            "bytes_transferred": self.bytes_transferred,
            "throughput_bytes_per_s": round(self.throughput_bytes_per_s, 1),
            "reused_parts": self.reused_parts,
            "source_requests": self.source_requests,
            "url_refreshes": self.url_refreshes,
        }


class _PartBody(io.RawIOBase):
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


class _BufferPool:
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


def _supports_full_object(s3: Any) -> bool:
    try:
        members = s3.meta.service_model.operation_model("CompleteMultipartUpload").input_shape.members
    except Exception:  # a stub client without a service model
        return False
    return "ChecksumType" in members


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) or "Unknown"


def _sink_error(operation: str, exc: BaseException) -> TransferError:
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code in _DIGEST_ERRORS:
            return ChecksumMismatch(f"S3 {operation} refused the bytes' checksum ({code})")
        return SinkError(f"S3 {operation} failed: {code}", code=code, transient=code in _TRANSIENT_S3_ERRORS)
    return SinkError(f"S3 {operation} failed: {describe_exception(exc)}", transient=True)


class S3StreamTransfer:
    """Copies HTTP(S) sources into S3; one instance can serve many sequential or concurrent transfers."""

    def __init__(
        self,
        s3: Any,
        session: requests.Session | None = None,
        config: TransferConfig | None = None,
        *,
        allowed_hosts: tuple[str, ...] | list[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.s3 = s3
        self.config = config or TransferConfig()
        self.session = session or make_session(self.config.window + 1)
        self.allowed_hosts = None if allowed_hosts is None else tuple(allowed_hosts)
        self.sleep = sleep
        self.clock = clock
        wanted = self.config.checksum_type
        if wanted == "auto":
            wanted = FULL_OBJECT if _supports_full_object(s3) else COMPOSITE
        self.s3_checksum_type = wanted
        pool = getattr(getattr(getattr(s3, "meta", None), "config", None), "max_pool_connections", None)
        if isinstance(pool, int) and pool < self.config.window:
            log.warning(
                "S3 client pool (%d) is smaller than the window (%d): uploads will queue", pool, self.config.window
            )

    def transfer(
        self,
        req: TransferRequest,
        *,
        deadline: float | None = None,
        resume: MultipartCheckpoint | None = None,
        on_checkpoint: Callable[[MultipartCheckpoint], None] | None = None,
        refresh_url: Callable[[], str] | None = None,
    ) -> TransferResult:
        """Copy `req.url` to `s3://req.bucket/req.key` and verify it, or raise a `TransferError`.

        `deadline` is a value of the engine's clock (default `time.monotonic`). After any error other than
        `DeadlineReached`, the multipart upload has been aborted and an earlier checkpoint is dead.
        """
        return _Transfer(self, req, deadline, on_checkpoint, refresh_url).run(resume)


class _Transfer:
    """The state of one `transfer` call."""

    def __init__(
        self,
        engine: S3StreamTransfer,
        req: TransferRequest,
        deadline: float | None,
        on_checkpoint: Callable[[MultipartCheckpoint], None] | None,
        refresh_url: Callable[[], str] | None,
    ) -> None:
        self.engine = engine
        self.cfg = engine.config
        self.s3 = engine.s3
        self.req = req
        self.deadline = deadline
        self.on_checkpoint = on_checkpoint
        self.clock = engine.clock
        self.started = self.clock()
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.ttfb: float | None = None
        self.source = HttpSource(
            engine.session,
            req.url,
            head_url=req.head_url,
            connect_timeout=self.cfg.connect_timeout,
            read_timeout=self.cfg.read_timeout,
            read_chunk=self.cfg.read_chunk,
            allowed_hosts=engine.allowed_hosts,
            refresh_url=refresh_url,
            max_refreshes=self.cfg.max_url_refreshes,
            cancel=self.cancel,
            on_first_byte=self._first_byte,
        )
        self.size: int | None = None
        self.part_size = self.cfg.part_size
        self.window = self.cfg.window
        self.s3_checksum_type = engine.s3_checksum_type
        self.upload_id: str | None = None
        self.done: dict[int, CompletedPart] = {}
        self.crcs: dict[int, int] = {}  # every part read so far, to verify bytes read again after a restart
        self.durations: deque[float] = deque(maxlen=8)
        self.bytes_uploaded = 0
        self.reused = 0
        self.mode = "single"
        self.source_etag: str | None = None
        self.buffers = _BufferPool(self.part_size)

    # --- small helpers -------------------------------------------------------------------------------------

    def _first_byte(self) -> None:
        with self.lock:
            if self.ttfb is None:
                self.ttfb = self.clock() - self.started

    def _retry(self, fn: Callable[[], T], describe: str) -> T:
        return call_with_retry(
            fn,
            policy=self.cfg.retry,
            retry_on=(TransferError,),
            give_up=lambda exc: not getattr(exc, "transient", False) or self.cancel.is_set(),
            sleep=self.engine.sleep,
            deadline=None if self.deadline is None else Deadline(self.deadline, self.clock),
            describe=f"{describe} of {self.source.display_url}",
        )

    def _part_estimate(self) -> float:
        """The slowest of the last few parts (fetch + upload), or a guess before any has finished."""
        with self.lock:
            if self.durations:
                return max(self.durations)
        return self.part_size / self.cfg.assumed_throughput_bytes_per_s

    def _part_took(self, seconds: float) -> None:
        with self.lock:
            self.durations.append(seconds)

    def _deadline_near(self) -> bool:
        if self.deadline is None:
            return False
        return self.clock() + self._part_estimate() + self.cfg.deadline_margin_s > self.deadline

    def _deadline_casualty(self, exc: BaseException) -> bool:
        """A transient failure at the deadline is a reason to checkpoint, not to throw the upload away."""
        return isinstance(exc, TransferError) and exc.transient and self._deadline_near()

    def _check_size(self, actual: int | None, what: str) -> None:
        expected = self.req.expected_size
        if expected is not None and actual is not None and expected != actual:
            raise SizeMismatch(
                f"{what} is {actual} bytes, the provider said {expected}", expected=expected, actual=actual
            )

    def _learn_size(self, size: int) -> None:
        self._check_size(size, "the source")
        if size > MAX_PARTS * self.part_size:
            raise SizeMismatch(f"{size} bytes do not fit 10,000 parts of {self.part_size}", actual=size)
        self.size = size
        self.source.size = size

    # --- the run -------------------------------------------------------------------------------------------

    def run(self, resume: MultipartCheckpoint | None) -> TransferResult:
        if resume is not None and (resume.bucket, resume.key) != (self.req.bucket, self.req.key):
            raise ValueError("the checkpoint belongs to another object")
        if self._deadline_near():
            raise DeadlineReached(resume)
        log.info(
            "transfer start %s -> s3://%s/%s%s",
            self.source.display_url,
            self.req.bucket,
            self.req.key,
            f" (resuming {len(resume.parts)} parts)" if resume else "",
        )
        if resume is not None:
            self.upload_id = resume.upload_id  # ours from now on: any failure below aborts it
        try:
            return self._run(resume)
        except DeadlineReached:
            raise
        except BaseException as exc:
            self.cancel.set()
            self._abort(type(exc).__name__)
            log.warning("transfer failed for s3://%s/%s: %s", self.req.bucket, self.req.key, exc)
            raise

    def _run(self, resume: MultipartCheckpoint | None) -> TransferResult:
        info = self._retry(self.source.probe, "probe")
        self.source.etag = self.source_etag = info.etag
        if resume is not None:
            resume = self._adopt(resume, info)
        if info.size is not None:
            self._check_size(info.size, "the source")
            self.size = info.size
        self.source.size = self.size
        if resume is None and info.size is not None and info.size < self.cfg.multipart_threshold:
            return self._single_put(info.size)
        if resume is None:
            try:
                self.part_size = choose_part_size(
                    info.size if info.size is not None else self.req.expected_size, self.cfg.part_size
                )
            except ObjectTooLarge as exc:
                raise SizeMismatch(str(exc), actual=info.size) from None
            self.buffers = _BufferPool(self.part_size)
        self.window = max(1, min(self.cfg.window, self.cfg.max_buffer_bytes // self.part_size))
        if self.window < self.cfg.window:
            log.info(
                "window reduced to %d so %d-byte parts stay within the buffer cap", self.window, self.part_size
            )
        with ThreadPoolExecutor(max_workers=self.window, thread_name_prefix="transfer") as pool:
            try_range = info.ranges is not False
            if self.size is not None and try_range:
                self.mode = "ranged"
                try_range = self._run_ranged(pool)
            if not self._all_done():
                if self.mode == "ranged":
                    log.warning("source ignored Range; continuing with one sequential stream")
                self.mode = "sequential"
                single = self._run_sequential(pool, try_range)
                if single is not None:
                    return single
        return self._complete()

    def _all_done(self) -> bool:
        if self.size is None:
            return False
        count = max(1, -(-self.size // self.part_size))
        return all(n in self.done for n in range(1, count + 1))

    # --- resume --------------------------------------------------------------------------------------------

    def _adopt(self, cp: MultipartCheckpoint, info: SourceInfo) -> MultipartCheckpoint | None:
        """Take over a checkpoint's upload, keeping the parts ListParts confirms; None to start afresh."""
        self.upload_id = cp.upload_id
        changed = (cp.size is not None and info.size is not None and cp.size != info.size) or (
            cp.source_etag is not None and info.etag is not None and cp.source_etag != info.etag
        )
        if changed:
            log.warning("source changed since the checkpoint; discarding its upload and starting again")
            self._abort("source changed")
            return None
        listed = self._list_parts(cp.upload_id)
        if listed is None:
            log.warning("the checkpoint's upload no longer exists; starting again")
            self.upload_id = None
            return None
        self.part_size = cp.part_size
        self.buffers = _BufferPool(self.part_size)
        self.s3_checksum_type = cp.checksum_type
        for part in cp.parts:
            if listed.get(part.number) == (part.etag.strip('"'), part.size):
                self.done[part.number] = part
                self.crcs[part.number] = part.crc32c
            else:
                log.info("part %d of the checkpoint is not in S3 as recorded; fetching it again", part.number)
        self.reused = len(self.done)
        if cp.size is not None:
            self.size = cp.size
        return cp

    def _list_parts(self, upload_id: str) -> dict[int, tuple[str, int]] | None:
        listed: dict[int, tuple[str, int]] = {}
        marker = 0
        while True:
            try:
                page = self.s3.list_parts(
                    Bucket=self.req.bucket, Key=self.req.key, UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if _error_code(exc) == "NoSuchUpload":
                    return None
                raise _sink_error("ListParts", exc) from None
            except BotoCoreError as exc:
                raise _sink_error("ListParts", exc) from None
            for part in page.get("Parts", []):
                listed[int(part["PartNumber"])] = (str(part["ETag"]).strip('"'), int(part["Size"]))
            if not page.get("IsTruncated"):
                return listed
            marker = int(page["NextPartNumberMarker"])

    # --- S3 calls ------------------------------------------------------------------------------------------

    def _tagging(self) -> dict[str, str]:
        return {"Tagging": urlencode(dict(self.req.tags))} if self.req.tags else {}

    def _ensure_upload(self) -> str:
        if self.upload_id is None:
            kwargs: dict[str, Any] = {
                "Bucket": self.req.bucket,
                "Key": self.req.key,
                "ContentType": self.req.content_type,
                "Metadata": dict(self.req.metadata),
                "ChecksumAlgorithm": ALGORITHM,
                **self._tagging(),
            }
            if self.s3_checksum_type == FULL_OBJECT:
                kwargs["ChecksumType"] = FULL_OBJECT
            try:
                self.upload_id = str(self.s3.create_multipart_upload(**kwargs)["UploadId"])
            except (ClientError, BotoCoreError) as exc:
                raise _sink_error("CreateMultipartUpload", exc) from None
            log.info(
                "multipart upload started for s3://%s/%s: %s parts of %d bytes, window %d, %s",
                self.req.bucket,
                self.req.key,
                "?" if self.size is None else max(1, -(-self.size // self.part_size)),
                self.part_size,
                self.window,
                self.mode,
            )
        return self.upload_id

    def _upload_part(self, number: int, buf: bytearray, length: int, crc: int) -> CompletedPart:
        upload_id = self.upload_id
        if upload_id is None:
            raise SinkError("no multipart upload to add a part to")
        try:
            with _PartBody(buf, length) as body:
                resp = self.s3.upload_part(
                    Bucket=self.req.bucket,
                    Key=self.req.key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentLength=length,
                    ChecksumAlgorithm=ALGORITHM,
                    ChecksumCRC32C=to_base64(crc),
                )
        except (ClientError, BotoCoreError) as exc:
            raise _sink_error(f"UploadPart {number}", exc) from None
        with self.lock:
            self.bytes_uploaded += length
        return CompletedPart(number=number, etag=str(resp["ETag"]), crc32c=crc, size=length)

    def _abort(self, reason: str) -> None:
        upload_id, self.upload_id = self.upload_id, None
        if upload_id is None:
            return
        try:
            self.s3.abort_multipart_upload(Bucket=self.req.bucket, Key=self.req.key, UploadId=upload_id)
            log.info("aborted multipart upload for s3://%s/%s (%s)", self.req.bucket, self.req.key, reason)
        except (ClientError, BotoCoreError) as exc:
            # The bucket's AbortIncompleteMultipartUpload lifecycle rule is the backstop for this.
            log.error("could not abort multipart upload %s: %s", upload_id, describe_exception(exc))

    def _put(self, buf: bytearray, length: int, crc: int) -> TransferResult:
        value = to_base64(crc)
        try:
            with _PartBody(buf, length) as body:
                resp = self.s3.put_object(
                    Bucket=self.req.bucket,
                    Key=self.req.key,
                    Body=body,
                    ContentLength=length,
                    ContentType=self.req.content_type,
                    Metadata={**self.req.metadata, CHECKSUM_METADATA_KEY: value},
                    ChecksumCRC32C=value,
                    **self._tagging(),
                )
        except (ClientError, BotoCoreError) as exc:
            raise _sink_error("PutObject", exc) from None
        self.bytes_uploaded += length
        return self._result(length, crc, resp, parts=1, multipart=False, s3_type=FULL_OBJECT)

    def _complete(self) -> TransferResult:
        parts = [self.done[n] for n in sorted(self.done)]
        total = sum(p.size for p in parts)
        if [p.number for p in parts] != list(range(1, len(parts) + 1)):
            raise SizeMismatch("parts are missing; refusing to complete")
        if self.size is not None and total != self.size:
            raise SizeMismatch(f"uploaded {total} bytes of {self.size}", expected=self.size, actual=total)
        self._check_size(total, "the uploaded object")
        whole = combine_parts((p.crc32c, p.size) for p in parts)
        kwargs: dict[str, Any] = {
            "Bucket": self.req.bucket,
            "Key": self.req.key,
            "UploadId": self.upload_id,
            "MultipartUpload": {
                "Parts": [
                    {"PartNumber": p.number, "ETag": p.etag, "ChecksumCRC32C": to_base64(p.crc32c)} for p in parts
                ]
            },
        }
        if self.s3_checksum_type == FULL_OBJECT:
            kwargs.update(ChecksumCRC32C=to_base64(whole), ChecksumType=FULL_OBJECT)
        try:
            resp = self.s3.complete_multipart_upload(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _sink_error("CompleteMultipartUpload", exc) from None
        self.upload_id = None  # completed: nothing left to abort
        return self._result(total, whole, resp, parts=len(parts), multipart=True, s3_type=self.s3_checksum_type)

    def _result(
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
            bytes_transferred=self.bytes_uploaded,
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

    # --- single PUT ----------------------------------------------------------------------------------------

    def _single_put(self, size: int) -> TransferResult:
        self.mode = "single"
        buf = bytearray(size)
        crc = self._retry(lambda: self.source.read_range(0, size, buf), "GET")
        return self._put(buf, size, crc)

    # --- deadline ------------------------------------------------------------------------------------------

    def _stop_for_deadline(self) -> None:
        if self.upload_id is None:
            raise DeadlineReached(None)
        checkpoint = MultipartCheckpoint(
            bucket=self.req.bucket,
            key=self.req.key,
            upload_id=self.upload_id,
            part_size=self.part_size,
            size=self.size,
            parts=tuple(self.done[n] for n in sorted(self.done)),
            checksum_type=self.s3_checksum_type,
            source_etag=self.source_etag,
        )
        if self.on_checkpoint is not None:
            self.on_checkpoint(checkpoint)  # if saving fails, run() aborts: an upload nobody can resume is waste
        log.info(
            "deadline: stopping s3://%s/%s after %d part(s), upload kept for resume",
            self.req.bucket,
            self.req.key,
            len(checkpoint.parts),
        )
        raise DeadlineReached(checkpoint)

    # --- parallel ranged GETs ------------------------------------------------------------------------------

    def _ranged_part(self, number: int) -> CompletedPart:
        assert self.size is not None
        rng = part_range(number, self.part_size, self.size)
        began = self.clock()
        buf = self.buffers.take()
        try:
            crc = self._retry(lambda: self.source.read_range(rng.start, rng.length, buf), f"GET part {number}")
            part = self._upload_part(number, buf, rng.length, crc)
        finally:
            self.buffers.give(buf)
        self._part_took(self.clock() - began)
        return part

    def _run_ranged(self, pool: ThreadPoolExecutor) -> bool:
        """Fetch and upload the missing parts, `window` at a time. Returns False if the server ignored Range."""
        assert self.size is not None
        count = max(1, -(-self.size // self.part_size))
        pending = deque(n for n in range(1, count + 1) if n not in self.done)
        inflight: dict[Future[CompletedPart], int] = {}
        failure: BaseException | None = None
        stop_deadline = False
        ranges_ignored = False
        while True:
            while (
                failure is None
                and not stop_deadline
                and not ranges_ignored
                and pending
                and len(inflight) < self.window
            ):
                if self._deadline_near():
                    stop_deadline = True
                    break
                self._ensure_upload()  # here, not in the workers: exactly one upload, created by this thread
                number = pending.popleft()
                inflight[pool.submit(self._ranged_part, number)] = number
            if not inflight:
                break
            finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in finished:
                number = inflight.pop(future)
                try:
                    part = future.result()
                except RangeNotHonoured:
                    ranges_ignored = True
                except BaseException as exc:
                    if failure is None and self._deadline_casualty(exc):
                        stop_deadline = True
                    elif failure is None:
                        failure = exc
                        self.cancel.set()
                else:
                    self.done[number] = part
                    self.crcs[number] = part.crc32c
        if failure is not None:
            raise failure
        if stop_deadline:
            self._stop_for_deadline()
        return not ranges_ignored

    # --- one sequential stream -----------------------------------------------------------------------------

    def _run_sequential(self, pool: ThreadPoolExecutor, try_range: bool) -> TransferResult | None:
        """Read the source front to back from the first missing part; returns a result if it was a single PUT."""
        reader = _SequentialReader(self, try_range)
        inflight: dict[Future[CompletedPart], tuple[int, float]] = {}
        failure: BaseException | None = None
        stop_deadline = False

        def collect(block_until: int) -> None:
            """Record finished uploads; wait while more than `block_until` are in flight."""
            nonlocal failure, stop_deadline
            while inflight and (len(inflight) > block_until or any(f.done() for f in inflight)):
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in finished:
                    number, began = inflight.pop(future)
                    try:
                        part = future.result()
                    except BaseException as exc:
                        if failure is None and self._deadline_casualty(exc):
                            stop_deadline = True
                        elif failure is None:
                            failure = exc
                    else:
                        self.done[number] = part
                        self._part_took(self.clock() - began)

        number = min(n for n in range(1, MAX_PARTS + 2) if n not in self.done)
        try:
            while True:
                # One buffer is being read while at most window - 1 are uploading: memory = window x part size.
                collect(block_until=self.window - 1)
                if failure is not None or stop_deadline:
                    break
                if self.size is not None and number > max(1, -(-self.size // self.part_size)):
                    break
                if number > MAX_PARTS:
                    raise SizeMismatch(f"the source is longer than 10,000 parts of {self.part_size} bytes")
                if number not in self.done and self._deadline_near():
                    stop_deadline = True
                    break
                began = self.clock()
                buf = self.buffers.take()
                try:
                    length, crc = self._retry(lambda n=number, b=buf: reader.read_part(n, b), f"GET part {number}")
                except BaseException as exc:
                    self.buffers.give(buf)
                    if self._deadline_casualty(exc):
                        stop_deadline = True
                        break
                    raise
                last = length < self.part_size if self.size is None else number * self.part_size >= self.size
                if number in self.done:
                    self.buffers.give(buf)
                    if self.done[number].crc32c != crc or self.done[number].size != length:
                        raise ChecksumMismatch(f"part {number} read again differs from the uploaded part")
                elif length == 0 and number > 1:
                    self.buffers.give(buf)  # the stream ended exactly at a part boundary
                    break
                elif number == 1 and last and self.upload_id is None:
                    reader.finish()
                    self._check_size(length, "the source")
                    return self._put(buf, length, crc)
                else:
                    self.crcs[number] = crc
                    self._ensure_upload()
                    inflight[pool.submit(self._upload_and_release, number, buf, length, crc)] = (number, began)
                if last:
                    break
                number += 1
            collect(block_until=0)
            if failure is None and not stop_deadline:
                reader.finish()
        finally:
            if failure is not None:
                self.cancel.set()
            collect(block_until=0)
            reader.close()
        if failure is not None:
            raise failure
        if stop_deadline:
            self._stop_for_deadline()
        if self.size is None:
            self._learn_size(sum(p.size for p in self.done.values()))
        return None

    def _upload_and_release(self, number: int, buf: bytearray, length: int, crc: int) -> CompletedPart:
        try:
            return self._upload_part(number, buf, length, crc)
        finally:
            self.buffers.give(buf)


class _SequentialReader:
    """Keeps one GET stream positioned at the next part; after a failure, re-opens it where it is needed.

    A server that honours `Range: bytes=N-` resumes at the part; one that does not starts again at byte 0, and
    the bytes before the part are read through and checked against the CRCs of the parts already read.
    """

    def __init__(self, transfer: _Transfer, try_range: bool) -> None:
        self.t = transfer
        self.try_range = try_range
        self.stream: SourceStream | None = None

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def read_part(self, number: int, buf: bytearray) -> tuple[int, int]:
        t = self.t
        start = (number - 1) * t.part_size
        try:
            if self.stream is None or self.stream.position != start:
                self._open(start, buf)
            assert self.stream is not None
            want = t.part_size if t.size is None else part_range(number, t.part_size, t.size).length
            length, crc = t.source.stream_read(self.stream, memoryview(buf)[:want])
            if t.size is not None and length != want:
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
        t = self.t
        self.close()
        stream = self.stream = t.source.open_stream(start, try_range=self.try_range)
        if stream.total is not None and t.size is None:
            t._learn_size(stream.total)
        if t.size is None and not stream.framed:
            if t.req.expected_size is None and t.cfg.require_verifiable_size:
                raise SourceError("the source gives no size and an unframed body: a cut could not be detected")
            log.warning("source body has no length; relying on expected_size to detect truncation")
        if stream.position < start:
            log.info(
                "source restarted at byte 0; reading through %d bytes to reach byte %d", stream.position, start
            )
        while stream.position < start:
            number = stream.position // t.part_size + 1
            length, crc = t.source.stream_read(stream, memoryview(scratch)[: t.part_size])
            if length != t.part_size:
                raise SizeMismatch(f"stream ended before byte {start}", transient=True)
            known = t.crcs.get(number)
            if known is not None and known != crc:
                raise ChecksumMismatch(f"part {number} read again differs from the first read: the source changed")

    def finish(self) -> None:
        """After the last part: a source with a known size must have no bytes left."""
        if self.stream is not None and self.t.size is not None and not self.stream.at_end():
            raise SizeMismatch(f"the source has more than the announced {self.t.size} bytes", expected=self.t.size)
