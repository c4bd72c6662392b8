"""Stream one remote file into S3 without ever holding the whole file: `S3StreamTransfer.transfer`.

This module probes, resumes and hands the transfer to the strategies (`strategies`); the S3 calls are in
`s3_sink`, the HTTP side in `source`, the state of one call in `job`. How it works, and why:
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
- With a `deadline` (a `pipeline.deadline.Deadline`), no part is started that would not finish before it
  (estimated from the slowest recent part); in-flight parts finish, `on_checkpoint` receives the typed
  `MultipartCheckpoint`, the upload is kept, and `DeadlineReached` is raised. `transfer(...,
  resume=checkpoint)` checks the parts with ListParts and only fetches what is missing.
- A kill gives no warning, so `on_checkpoint` also receives progress checkpoints as the transfer goes: when the
  upload is created (no upload the pipeline starts is unknown to it), then every `checkpoint_every_parts` parts
  or `checkpoint_every_seconds` seconds. A successor resumes from the last one, and adopts the parts uploaded
  since that S3 lists with their CRC32C, so it re-reads only what S3 does not confirm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests

from pipeline.deadline import Deadline
from pipeline.transfer.buffers import BufferPool
from pipeline.transfer.checkpoint import CompletedPart, MultipartCheckpoint
from pipeline.transfer.errors import DeadlineReached, SizeMismatch
from pipeline.transfer.job import TransferJob
from pipeline.transfer.model import TransferConfig, TransferMode, TransferRequest, TransferResult
from pipeline.transfer.plan import ObjectTooLarge, choose_part_size, part_count, part_range
from pipeline.transfer.s3_sink import ListedPart, resolve_checksum_type
from pipeline.transfer.source import SourceInfo, make_session
from pipeline.transfer.strategies import RangesIgnored, resolve

log = logging.getLogger(__name__)


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
        self.s3_checksum_type = resolve_checksum_type(s3, self.config.checksum_type)
        pool = getattr(getattr(getattr(s3, "meta", None), "config", None), "max_pool_connections", None)
        if isinstance(pool, int) and pool < self.config.window:
            log.warning(
                "S3 client pool (%d) is smaller than the window (%d): uploads will queue", pool, self.config.window
            )

    def transfer(
        self,
        req: TransferRequest,
        *,
        deadline: Deadline | None = None,
        resume: MultipartCheckpoint | None = None,
        on_checkpoint: Callable[[MultipartCheckpoint], None] | None = None,
        refresh_url: Callable[[], str] | None = None,
    ) -> TransferResult:
        """Copy `req.url` to `s3://req.bucket/req.key` and verify it, or raise a `TransferError`.

        After any error other than `DeadlineReached`, the multipart upload has been aborted and an earlier
        checkpoint is dead.
        """
        job = TransferJob(self, req, deadline=deadline, on_checkpoint=on_checkpoint, refresh_url=refresh_url)
        if resume is not None and (resume.bucket, resume.key) != (req.bucket, req.key):
            raise ValueError("the checkpoint belongs to another object")
        if job.deadline_near():
            raise DeadlineReached(resume)
        log.info(
            "transfer start %s -> s3://%s/%s%s",
            job.source.display_url,
            req.bucket,
            req.key,
            f" (resuming {len(resume.parts)} parts)" if resume else "",
        )
        if resume is not None:
            job.sink.adopt(resume.upload_id)
        try:
            return _run(job, resume)
        except DeadlineReached:
            raise
        except BaseException as exc:
            job.fail(type(exc).__name__)
            log.warning("transfer failed for s3://%s/%s: %s", req.bucket, req.key, exc)
            raise


def _run(job: TransferJob, resume: MultipartCheckpoint | None) -> TransferResult:
    info = job.retry(job.source.probe, "probe")
    job.source.etag = job.source_etag = info.etag
    job.ranges = info.ranges
    if resume is not None:
        resume = _adopt(job, resume, info)
    if info.size is not None:
        job.check_size(info.size, "the source")
        job.size = info.size
    job.source.size = job.size
    strategies = resolve(job, resuming=resume is not None)
    strategy = next(strategies)
    if strategy.mode is not TransferMode.SINGLE:
        _plan_parts(job, resuming=resume is not None)
    while True:
        job.mode = strategy.mode
        try:
            return strategy.run(job)
        except RangesIgnored:
            log.warning("source ignored Range; continuing with one sequential stream")
            job.ranges = False
            strategy = next(strategies)


def _plan_parts(job: TransferJob, *, resuming: bool) -> None:
    """Part size (kept from a checkpoint) and the window that keeps the part buffers within the cap."""
    cfg = job.cfg
    if not resuming:
        try:
            job.part_size = choose_part_size(
                job.size if job.size is not None else job.req.expected_size, cfg.part_size
            )
        except ObjectTooLarge as exc:
            raise SizeMismatch(str(exc), actual=job.size) from None
        job.buffers = BufferPool(job.part_size)
    job.window = max(1, min(cfg.window, cfg.max_buffer_bytes // job.part_size))
    if job.window < cfg.window:
        log.info("window reduced to %d so %d-byte parts stay within the buffer cap", job.window, job.part_size)


def _adopt(job: TransferJob, cp: MultipartCheckpoint, info: SourceInfo) -> MultipartCheckpoint | None:
    """Take over a checkpoint's upload, keeping the parts ListParts confirms; None to start afresh."""
    changed = (cp.size is not None and info.size is not None and cp.size != info.size) or (
        cp.source_etag is not None and info.etag is not None and cp.source_etag != info.etag
    )
    if changed:
        log.warning("source changed since the checkpoint; discarding its upload and starting again")
        job.sink.abort("source changed")
        return None
    listed = job.sink.list_parts(cp.upload_id)
    if listed is None:
        log.warning("the checkpoint's upload no longer exists; starting again")
        job.sink.upload_id = None
        return None
    job.part_size = cp.part_size
    job.buffers = BufferPool(job.part_size)
    job.sink.checksum_type = cp.checksum_type
    if cp.size is not None:
        job.size = cp.size
    for part in cp.parts:
        there = listed.get(part.number)
        if there is not None and (there.etag, there.size) == (part.etag.strip('"'), part.size):
            job.record(part)
        else:
            log.info("part %d of the checkpoint is not in S3 as recorded; fetching it again", part.number)
    late = _confirmed_since(job, listed)
    for part in late:
        job.record(part)
    if late:
        log.info("adopting %d part(s) S3 holds beyond the checkpoint (ListParts with their CRC32C)", len(late))
    job.reused = len(job.done)
    return cp


def _confirmed_since(job: TransferJob, listed: dict[int, ListedPart]) -> list[CompletedPart]:
    """Parts uploaded after the last checkpoint (its worker died before the next one) that S3 confirms whole.

    Kept only with S3's own CRC32C (checked against the bytes when they were uploaded: the whole-object checksum
    can be folded from it) and exactly the size the part must have; anything else is fetched again.
    """
    adopted = []
    for number, there in sorted(listed.items()):
        if number in job.done or there.crc32c is None:
            continue
        if job.size is not None:
            if number > part_count(job.size, job.part_size):
                continue
            wanted = part_range(number, job.part_size, job.size).length
        else:
            wanted = job.part_size  # a stream of unknown size: only whole parts are known to be right
        if there.size == wanted:
            adopted.append(CompletedPart(number=number, etag=f'"{there.etag}"', crc32c=there.crc32c, size=wanted))
    return adopted
