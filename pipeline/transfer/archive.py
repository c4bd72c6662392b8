"""One provider file into one archive object: the URL policy first, an object already in S3, then the engine.

Why an adapter in front of the engine: a redelivered message must be cheap, so an object already at its key that
is this medium's, complete and as large as the source says now is answered without a byte moved; and every URL
a provider hands over is held to the `DownloadPolicy` before anything is requested. Both answers are the
engine's own `TransferResult`, and the checkpoint goes in and out typed (`MultipartCheckpoint`): the downloader
stores its JSON form, this package never sees a dict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import requests
from botocore.exceptions import ClientError

from pipeline.aws_errors import OBJECT_NOT_FOUND, error_code
from pipeline.transfer.checkpoint import MultipartCheckpoint
from pipeline.transfer.checksums import ALGORITHM, Checksum
from pipeline.transfer.engine import S3StreamTransfer
from pipeline.transfer.model import CHECKSUM_METADATA_KEY, TransferConfig, TransferRequest, TransferResult
from pipeline.transfer.source import make_session
from pipeline.transfer.url_policy import FOLLOW_REDIRECTS, DownloadPolicy

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.deadline import Deadline
    from pipeline.providers.base import DownloadSource

log = logging.getLogger(__name__)

# Object metadata written on every archived object; `META_MEDIA_ID` is how an existing object is recognised.
META_PROVIDER = "sync-provider"
META_MEDIA_ID = "sync-media-id"
META_RUN_ID = "sync-run-id"
META_CAPTURED_AT = "sync-captured-at"
META_ORIGINAL_FILENAME = "sync-original-filename"
META_ITEM = "sync-item"


class S3FileTransfer:
    """The downloader's seam to the engine, for one archive bucket."""

    def __init__(
        self,
        engine: S3StreamTransfer,
        bucket: str,
        *,
        policy: DownloadPolicy | None = None,
        head_timeout: float = 10.0,
    ) -> None:
        self._engine = engine
        self._bucket = bucket
        self._policy = policy or DownloadPolicy()
        self._head_timeout = head_timeout

    @classmethod
    def from_settings(cls, settings: Settings, s3: Any) -> S3FileTransfer:
        policy = DownloadPolicy.from_settings(settings)
        config = TransferConfig.from_settings(settings, window=settings.transfer_window)
        session = make_session(config.window + 1, guard=policy.guard())  # vets every connection's addresses
        engine = S3StreamTransfer(s3, session, config=config, allowed_hosts=policy.engine_hosts())
        return cls(engine, settings.bucket_name, policy=policy)

    @property
    def policy(self) -> DownloadPolicy:
        return self._policy

    def _check_source(self, source: DownloadSource) -> None:
        self._policy.check(source.url)
        if source.head_url:
            self._policy.check(source.head_url)

    def existing(self, key: str, media_id: str, source: DownloadSource) -> TransferResult | None:
        """The object at `key` if it is this medium's, complete (S3 only shows completed uploads) and as large
        as the source says now; None means "transfer it". A source the policy refuses raises UnsafeDownloadUrl
        here, the first place a plan's URLs are seen (UnsafeAddress when its HEAD host resolves inside)."""
        self._check_source(source)
        try:
            head = self._engine.s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) in OBJECT_NOT_FOUND:
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
        stored, written = head.get("ChecksumCRC32C"), metadata.get(CHECKSUM_METADATA_KEY)
        if stored and written and stored.split("-")[0] != written.split("-")[0]:
            # The CRC32C we wrote beside the bytes and the one S3 computes over them now disagree: the object
            # was overwritten behind our back (metadata copied along). Never adopt it: transfer it again.
            log.warning("%s no longer holds the bytes we archived (CRC32C changed); transferring again", key)
            return None
        value = stored or written
        if not value:
            return None
        return TransferResult.already_in_s3(
            bucket=self._bucket,
            key=key,
            size=size,
            checksum=Checksum(ALGORITHM, value.split("-")[0]),  # a composite value ends in "-<parts>"
            etag=str(head.get("ETag", "")),
            version_id=head.get("VersionId"),
        )

    def _source_size(self, source: DownloadSource) -> int | None:
        if not source.head_url:
            return None
        try:
            response = self._engine.session.head(
                source.head_url, timeout=self._head_timeout, allow_redirects=FOLLOW_REDIRECTS
            )
        except requests.RequestException:
            return None
        length = response.headers.get("Content-Length")
        # 2xx only: a redirect is "ok" to requests, but its Content-Length is the redirect page's, not the file's.
        return int(length) if 200 <= response.status_code < 300 and length and length.isdigit() else None

    def __call__(
        self,
        source: DownloadSource,
        *,
        key: str,
        metadata: Mapping[str, str],
        deadline: Deadline | None,
        resume: MultipartCheckpoint | None,
        on_checkpoint: Callable[[MultipartCheckpoint], None],
        refresh_url: Callable[[], str],
    ) -> TransferResult:
        """Transfer `source` to `key`; DeadlineReached (with the checkpoint) when the deadline comes first."""
        self._check_source(source)
        request = TransferRequest(
            url=source.url,
            head_url=source.head_url,
            bucket=self._bucket,
            key=key,
            content_type=source.content_type,
            metadata=metadata,
        )
        return self._engine.transfer(
            request,
            deadline=deadline,
            resume=resume,
            on_checkpoint=on_checkpoint,
            refresh_url=lambda: self._policy.check(refresh_url()),
        )
