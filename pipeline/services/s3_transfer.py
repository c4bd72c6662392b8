"""The downloader's seam to the transfer engine: one provider file into one S3 object.

It translates between the pipeline's types (DownloadSource, state Checksum, JSON checkpoints stored in DynamoDB)
and the engine's (TransferRequest, MultipartCheckpoint), and decides whether an object already in S3 is ours and
complete, which makes a redelivered message cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import requests
from botocore.exceptions import ClientError

from pipeline.services.downloader import META_MEDIA_ID, DeadlineCheckpoint, FileResult
from pipeline.state.models import Checksum
from pipeline.transfer import (
    CHECKSUM_METADATA_KEY,
    DeadlineReached,
    MultipartCheckpoint,
    S3StreamTransfer,
    TransferConfig,
    TransferRequest,
)

if TYPE_CHECKING:
    from pipeline.app import App
    from pipeline.providers.base import DownloadSource

log = logging.getLogger(__name__)


class S3FileTransfer:
    def __init__(self, engine: S3StreamTransfer, bucket: str, *, head_timeout: float = 10.0) -> None:
        self._engine = engine
        self._bucket = bucket
        self._head_timeout = head_timeout

    @classmethod
    def from_app(cls, app: App) -> S3FileTransfer:
        settings = app.settings
        config = TransferConfig.from_settings(settings, window=settings.transfer_window)
        engine = S3StreamTransfer(
            app.client("s3"), config=config, allowed_hosts=settings.allowed_download_hosts or None
        )
        return cls(engine, settings.bucket_name)

    def existing(self, key: str, media_id: str, source: DownloadSource) -> FileResult | None:
        """The object at `key` if it is this medium's, complete (S3 only shows completed uploads) and as large
        as the source says now; None means "transfer it"."""
        try:
            head = self._engine.s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        metadata = {k.lower(): v for k, v in head.get("Metadata", {}).items()}
        if metadata.get(META_MEDIA_ID) != media_id:
            log.warning("%s exists but belongs to another medium; it will be overwritten (versioned)", key)
            return None
        size = int(head.get("ContentLength", -1))
        source_size = self._source_size(source)
        if source_size is not None and source_size != size:
            log.warning("%s holds %d bytes but the source has %d; transferring again", key, size, source_size)
            return None
        value = head.get("ChecksumCRC32C") or metadata.get(CHECKSUM_METADATA_KEY)
        if not value:
            return None
        return FileResult(
            key=key,
            size=size,
            checksum=Checksum("CRC32C", value.split("-")[0]),
            duration_s=0.0,
            time_to_first_byte_s=None,
            skipped_existing=True,
        )

    def _source_size(self, source: DownloadSource) -> int | None:
        if not source.head_url:
            return None
        try:
            response = self._engine.session.head(
                source.head_url, timeout=self._head_timeout, allow_redirects=False
            )
        except requests.RequestException:
            return None
        length = response.headers.get("Content-Length")
        return int(length) if response.ok and length and length.isdigit() else None

    def __call__(
        self,
        source: DownloadSource,
        *,
        key: str,
        metadata: dict[str, str],
        deadline: float | None,
        resume: Mapping[str, Any] | None,
        on_checkpoint: Callable[[Mapping[str, Any]], None],
        refresh_url: Callable[[], str],
    ) -> FileResult:
        checkpoint = None
        if resume:
            try:
                checkpoint = MultipartCheckpoint.from_dict(resume)
            except ValueError as exc:
                log.warning("ignoring an unusable checkpoint for %s: %s", key, exc)
        request = TransferRequest(
            url=source.url,
            head_url=source.head_url,
            bucket=self._bucket,
            key=key,
            content_type=source.content_type,
            metadata=metadata,
        )
        try:
            result = self._engine.transfer(
                request,
                deadline=deadline,
                resume=checkpoint,
                on_checkpoint=lambda cp: on_checkpoint(cp.to_dict()),
                refresh_url=refresh_url,
            )
        except DeadlineReached as stop:
            saved = stop.checkpoint
            raise DeadlineCheckpoint(
                saved.to_dict() if saved else None, saved.bytes_done if saved else 0
            ) from None
        return FileResult(
            key=key,
            size=result.size,
            checksum=Checksum(result.checksum.algorithm, result.checksum.value),
            duration_s=result.duration_s,
            time_to_first_byte_s=result.time_to_first_byte_s,
        )
