"""The downloader's seam to the transfer engine: one provider file into one S3 object.

It translates between the pipeline's types (DownloadSource, state Checksum, JSON checkpoints stored in DynamoDB)
and the engine's (TransferRequest, MultipartCheckpoint), decides whether an object already in S3 is ours and
complete, which makes a redelivered message cheap, and holds every URL it is handed to the `DownloadPolicy`
before a single byte is requested.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
import urllib3.util
from botocore.exceptions import ClientError

from pipeline.services.downloader import META_MEDIA_ID, DeadlineCheckpoint, FileResult
from pipeline.transfer import (
    CHECKSUM_METADATA_KEY,
    DeadlineReached,
    MultipartCheckpoint,
    S3StreamTransfer,
    SourceError,
    TransferConfig,
    TransferRequest,
    redact_url,
)
from pipeline.transfer.checksums import Checksum
from pipeline.transfer.source import host_allowed

if TYPE_CHECKING:
    from pipeline.app import App
    from pipeline.config import Settings
    from pipeline.providers.base import DownloadSource

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# What a host may look like once parsed: a DNS name, a dotted IPv4 address, or an IPv6 literal. Anything else
# (percent-escapes, unicode, `_`) is refused rather than guessed at, since two URL parsers may read it differently.
_SAFE_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")


class UnsafeDownloadUrl(SourceError):
    """A download URL the policy refuses; permanent (the same provider answer would be refused again)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refusing download URL {redact_url(url)}: {reason}", transient=False)
        self.reason = reason


@dataclass(frozen=True)
class DownloadPolicy:
    """Where the downloader may fetch from: https only, from `allowed_hosts` (any https host when empty, except
    internal addresses); plain http only to a loopback host, and only in local mode (the simulator).

    Why here and not only in the engine: the downloader runs inside the VPC with the archive's IAM role, and
    every URL it fetches came from a provider's JSON answer. A hostile or compromised answer must not turn it into
    a proxy for the instance metadata endpoint or an internal service (SSRF), nor make it fetch a medium in clear
    text. The engine refuses redirects and re-checks `engine_hosts()` on every request it sends, including a
    refreshed URL; this policy decides what is acceptable in the first place.
    """

    allowed_hosts: tuple[str, ...] = ()
    local_mode: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> DownloadPolicy:
        return cls(allowed_hosts=tuple(settings.allowed_download_hosts), local_mode=settings.local_mode)

    def engine_hosts(self) -> tuple[str, ...] | None:
        """The allow list the engine enforces on each request (None: any host, this policy having checked)."""
        if not self.allowed_hosts:
            return None
        return self.allowed_hosts + (LOOPBACK_NAMES if self.local_mode else ())

    def check(self, url: str) -> str:
        """`url` if it may be fetched, else UnsafeDownloadUrl with the reason (never the query string)."""
        reason = self.refusal(url)
        if reason is not None:
            raise UnsafeDownloadUrl(url if isinstance(url, str) else repr(url), reason)
        return url

    def refusal(self, url: object) -> str | None:
        """Why `url` may not be fetched, or None when it may."""
        if not isinstance(url, str) or not url:
            return "not a URL"
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
            return "spaces, control characters or backslashes in the URL"
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            _ = parts.port  # raises ValueError on a malformed port
            connect_host = (urllib3.util.parse_url(url).host or "").lower().strip("[]")
        except (ValueError, urllib3.exceptions.LocationParseError):
            return "not a parseable URL"
        if "@" in parts.netloc:
            return "credentials in the URL"
        if not host or not _SAFE_HOST.fullmatch(host):
            return "no host, or a host that is not plain ASCII"
        # What requests will connect to must be what was checked here (parser differentials are an SSRF classic).
        if connect_host != host:
            return "the URL's host is ambiguous"
        host = host.rstrip(".")
        scheme = parts.scheme.lower()
        loopback = _is_loopback(host)
        if scheme == "http":
            if not (self.local_mode and loopback):
                return "plain http (downloads must use https)"
        elif scheme != "https":
            return f"scheme {scheme or '(none)'} (downloads must use https)"
        if self.local_mode and loopback:
            return None
        if self.allowed_hosts:
            if not host_allowed(url, self.allowed_hosts):
                return "host not in ALLOWED_DOWNLOAD_HOSTS"
            return None
        if loopback or _is_internal(host):
            return "an internal address"
        return None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host name denotes by itself: dotted, IPv6, or the numeric forms `inet_aton` accepts
    (`2130706433`, `0x7f.1`), which resolvers turn into addresses without any DNS lookup."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _ip(host)
    return address is not None and address.is_loopback


def _is_internal(host: str) -> bool:
    address = _ip(host)
    if address is None:
        return host.endswith((".internal", ".local", ".localdomain"))
    return not address.is_global or address.is_multicast


class S3FileTransfer:
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
    def from_app(cls, app: App) -> S3FileTransfer:
        settings = app.settings
        policy = DownloadPolicy.from_settings(settings)
        config = TransferConfig.from_settings(settings, window=settings.transfer_window)
        engine = S3StreamTransfer(app.client("s3"), config=config, allowed_hosts=policy.engine_hosts())
        return cls(engine, settings.bucket_name, policy=policy)

    @property
    def policy(self) -> DownloadPolicy:
        return self._policy

    def _check_source(self, source: DownloadSource) -> None:
        self._policy.check(source.url)
        if source.head_url:
            self._policy.check(source.head_url)

    def existing(self, key: str, media_id: str, source: DownloadSource) -> FileResult | None:
        """The object at `key` if it is this medium's, complete (S3 only shows completed uploads) and as large
        as the source says now; None means "transfer it". A source the policy refuses raises UnsafeDownloadUrl
        here, the first place a plan's URLs are seen."""
        self._check_source(source)
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
        # 2xx only: a redirect is "ok" to requests, but its Content-Length is the redirect page's, not the file's.
        return int(length) if 200 <= response.status_code < 300 and length and length.isdigit() else None

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
        self._check_source(source)
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
                refresh_url=lambda: self._policy.check(refresh_url()),
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
