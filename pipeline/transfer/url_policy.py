"""Which URLs a transfer may fetch: scheme, allowed hosts, host names, internal addresses and redirects.

Why one module: the downloader runs inside the VPC with the archive's IAM role, and every URL it fetches came from
a provider's JSON answer. A hostile or compromised answer must not turn it into a proxy for the instance metadata
endpoint or an internal service (SSRF), nor make it fetch a medium in clear text. Two checks use these rules:
- `DownloadPolicy.check` decides, before a single byte is requested, whether a provider's URL is acceptable at all
  (https only; never a single-label host name; `allowed_hosts` when set, else any host except internal address
  literals; plain http only to loopback in local mode);
- `check_request_url` is what the HTTP source re-checks on every request it sends, including a refreshed URL
  (http(s) only, and the engine's allow list from `DownloadPolicy.engine_hosts`).
Redirects are never followed (`FOLLOW_REDIRECTS`): a pre-signed URL that redirects is not what was vetted.
Names are not resolved here: a host name that resolves to an internal address is refused when the download session
connects (`DownloadPolicy.guard`, `safe_connect`), whether or not `allowed_hosts` is set.
`content_host` names the host a URL points to, as the run report and `sync_status` record it (so an operator can
pin `ALLOWED_DOWNLOAD_HOSTS` from what GoPro's links really use).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import urllib3.exceptions
import urllib3.util

from pipeline.observability.redaction import redact_url
from pipeline.transfer.errors import SourceError
from pipeline.transfer.safe_connect import AddressGuard, is_internal_address

if TYPE_CHECKING:
    from pipeline.config import Settings

#: Every request of a transfer is sent with `allow_redirects=FOLLOW_REDIRECTS`.
FOLLOW_REDIRECTS = False
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
FETCHABLE_SCHEMES = ("http", "https")
# What a host may look like once parsed: a DNS name, a dotted IPv4 address, or an IPv6 literal. Anything else
# (percent-escapes, unicode, `_`) is refused rather than guessed at, since two URL parsers may read it differently.
_SAFE_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")


class UnsafeDownloadUrl(SourceError):
    """A download URL the policy refuses; permanent (the same provider answer would be refused again)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refusing download URL {redact_url(url)}: {reason}", transient=False)
        self.reason = reason


def host_allowed(url: str, allowed_hosts: Iterable[str] | None) -> bool:
    """`allowed_hosts` entries are exact host names or `*.example.com` (any subdomain); None allows any host."""
    if allowed_hosts is None:
        return True
    host = (urllib3.util.parse_url(url).host or "").lower().rstrip(".")
    for pattern in allowed_hosts:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def check_request_url(url: str, allowed_hosts: Iterable[str] | None) -> None:
    """SourceError unless `url` is http(s) on an allowed host: the check before every request a source sends."""
    scheme = url.split(":", 1)[0].lower()
    if scheme not in FETCHABLE_SCHEMES:
        raise SourceError(f"refusing a non-HTTP(S) source URL ({redact_url(url)})")
    if not host_allowed(url, allowed_hosts):
        raise SourceError(f"refusing a source host that is not allowed ({redact_url(url)})")


@dataclass(frozen=True)
class DownloadPolicy:
    """Where the downloader may fetch from: https only, from `allowed_hosts` (any https host when empty, except
    internal addresses); plain http only to a loopback host, and only in local mode (the simulator)."""

    allowed_hosts: tuple[str, ...] = ()
    local_mode: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> DownloadPolicy:
        return cls(allowed_hosts=tuple(settings.allowed_download_hosts), local_mode=settings.local_mode)

    def guard(self) -> AddressGuard:
        """The connect-time check of the addresses a download host resolves to (loopback only in local mode)."""
        return AddressGuard(local_mode=self.local_mode)

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
        if not loopback and _single_label(host):
            return "a single-label host name (not a public DNS name)"
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
    return is_internal_address(address)


def _single_label(host: str) -> bool:
    """A name without a dot (`metadata`, `internal-api`, a bare number): resolved through the VPC's search
    domains or /etc/hosts, never a public content host. IPv6 literals have no dot and are not names."""
    return "." not in host and ":" not in host


#: At most this many characters of a host are recorded (a DNS name has at most 253).
MAX_HOST_LENGTH = 253


def content_host(url: object) -> str | None:
    """The lower-case host `url` points to, for the record of content hosts; None for anything that is not a
    plain ASCII host (never recorded: the record is for pinning real host names)."""
    if not isinstance(url, str):
        return None
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return None
    if not host or len(host) > MAX_HOST_LENGTH or not _SAFE_HOST.fullmatch(host):
        return None
    return host
