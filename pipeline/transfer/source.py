"""The HTTP side of a transfer: probing a pre-signed URL, ranged reads into caller buffers, a sequential stream.

Why it is strict about what it accepts (each rule is one way wrong bytes could otherwise become a "success"):
- `Accept-Encoding: identity`: byte ranges and lengths refer to the stored bytes, never a gzip rendition.
- A 206 must carry exactly the asked `Content-Range` with the total announced before; its `Content-Length` must
  equal the range. A 200 to a partial range means the server ignored `Range` (`RangeNotHonoured`): its body
  starts at byte 0, so the resolver hands the transfer to the sequential stream (`strategies`).
- Every body is counted (`http_body`): fewer bytes than announced raises a transient `SizeMismatch` (a cut
  connection), which the engine retries; urllib3's own Content-Length enforcement stays on as a second check.
- Redirects are refused and `allowed_hosts`, when given, is checked for the URL, the HEAD URL and any refreshed
  URL (`url_policy`); the session's connections vet the addresses a host resolves to (`safe_connect`).
- A 403 (an expired pre-signed URL) calls `refresh_url` at most `max_refreshes` times per transfer, shared by
  all threads: four parts failing together with 403 cause one refresh, not four.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from pipeline.observability.redaction import describe_exception, redact_url
from pipeline.retry import parse_retry_after
from pipeline.transfer.checksums import crc32c
from pipeline.transfer.errors import ChecksumMismatch, SizeMismatch, SourceError
from pipeline.transfer.http_body import (
    READ_ERRORS,
    Cancelled,
    SourceStream,
    at_end,
    check_encoding,
    content_length,
    content_range,
    read_error,
    readinto,
    release,
)
from pipeline.transfer.safe_connect import AddressGuard, GuardedAdapter
from pipeline.transfer.url_policy import FOLLOW_REDIRECTS, check_request_url

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_IDENTITY = {"Accept-Encoding": "identity"}


class RangeNotHonoured(SourceError):
    """The server answered 200 (the whole body) to a partial Range request."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=200, transient=False)


def make_session(pool_size: int, *, guard: AddressGuard | None = None) -> requests.Session:
    """A Session whose connection pool holds `pool_size` connections per host (the window plus the probe).

    `trust_env=False`: no proxies from the environment and, above all, no `.netrc` credentials added to a
    pre-signed request (which must carry no Authorization header). With `guard`, every connection is vetted by
    the addresses its host resolves to (`safe_connect`); the downloader's seam (`S3FileTransfer.from_settings`)
    always passes one, tests of the engine over loopback servers leave it out.
    """
    session = requests.Session()
    session.trust_env = False
    options: dict[str, Any] = {"pool_connections": 4, "pool_maxsize": max(1, pool_size), "max_retries": 0}
    adapter = HTTPAdapter(**options) if guard is None else GuardedAdapter(guard, **options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass(frozen=True)
class SourceInfo:
    size: int | None  # None: the source did not say
    ranges: bool | None  # True: honoured a Range; False: said it would not; None: unknown
    etag: str | None


class HttpSource:
    """One source object for the duration of one transfer; thread-safe for concurrent `read_range` calls."""

    def __init__(
        self,
        session: requests.Session,
        url: str,
        *,
        head_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        read_chunk: int = 1024 * 1024,
        allowed_hosts: Iterable[str] | None = None,
        refresh_url: Callable[[], str] | None = None,
        max_refreshes: int = 1,
        cancel: threading.Event | None = None,
        on_first_byte: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self._url = url
        self._head_url = head_url
        self._timeout = (connect_timeout, read_timeout)
        self._chunk = read_chunk
        self._allowed = None if allowed_hosts is None else tuple(allowed_hosts)
        self._refresh_url = refresh_url
        self._max_refreshes = max_refreshes
        self._cancel = cancel or threading.Event()
        self._on_first_byte = on_first_byte
        self._first_byte_seen = False
        self._lock = threading.Lock()
        self._generation = 0
        self.refreshes = 0
        self.requests = 0
        # Set by the engine after the probe; every later response is held to them.
        self.size: int | None = None
        self.etag: str | None = None

    @property
    def display_url(self) -> str:
        return redact_url(self._url)

    # --- requests ------------------------------------------------------------------------------------------

    def _check_url(self, url: str) -> None:
        check_request_url(url, self._allowed)

    def _send(self, method: str, url: str, headers: dict[str, str]) -> requests.Response:
        self._check_url(url)
        with self._lock:
            self.requests += 1
        try:
            return self._session.request(
                method,
                url,
                headers={**_IDENTITY, **headers},
                stream=True,
                allow_redirects=FOLLOW_REDIRECTS,
                timeout=self._timeout,
            )
        except (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(exc, requests.RequestException) and isinstance(exc, ValueError):
                raise SourceError(f"{method} {redact_url(url)}: {describe_exception(exc)}") from None
            raise SourceError(f"{method} {redact_url(url)}: {describe_exception(exc)}", transient=True) from None

    def _raise_for_status(self, resp: requests.Response, method: str, url: str) -> None:
        status = resp.status_code
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        location = resp.headers.get("Location")
        resp.close()
        where = f"{method} {redact_url(url)}"
        if 300 <= status < 400:
            target = f" to {redact_url(location)}" if location else ""
            raise SourceError(f"{where}: redirect ({status}){target} refused", status=status)
        if status == 403:
            raise SourceError(f"{where}: 403 (pre-signed URL expired or not valid)", status=status)
        raise SourceError(
            f"{where}: HTTP {status}",
            status=status,
            transient=status in TRANSIENT_STATUSES,
            retry_after=retry_after,
        )

    def _refresh(self, seen_generation: int) -> bool:
        """After a 403 on URL generation `seen_generation`: True if a newer URL is (now) available."""
        with self._lock:
            if self._generation != seen_generation:
                return True
            if self._refresh_url is None or self.refreshes >= self._max_refreshes:
                return False
            self.refreshes += 1
            try:
                new_url = self._refresh_url()
            except Exception as exc:
                raise SourceError(
                    f"403 and refreshing the URL failed: {describe_exception(exc)}", status=403
                ) from None
            self._check_url(new_url)
            self._url = new_url
            self._generation += 1
        log.info("source URL refreshed after a 403 (%s)", redact_url(new_url))
        return True

    def get(self, headers: dict[str, str], accept: tuple[int, ...] = ()) -> requests.Response:
        """GET the current URL; a 403 refreshes it (once per transfer) and tries again at once."""
        while True:
            with self._lock:
                url, generation = self._url, self._generation
            resp = self._send("GET", url, headers)
            if resp.status_code == 403 and self._refresh(generation):
                resp.close()
                continue
            if not (200 <= resp.status_code < 300 or resp.status_code in accept):
                self._raise_for_status(resp, "GET", url)
            return resp

    def _bytes_arrived(self) -> None:
        if not self._first_byte_seen:
            self._first_byte_seen = True
            if self._on_first_byte is not None:
                self._on_first_byte()

    # --- probing -------------------------------------------------------------------------------------------

    def probe(self) -> SourceInfo:
        """Size, Range support and ETag: HEAD on the `head` URL when there is one, else `GET Range: bytes=0-0`."""
        if self._head_url:
            try:
                return self._probe_head(self._head_url)
            except SourceError as exc:
                if exc.status not in (403, 405):
                    raise
                log.info("HEAD refused (%s); probing with a one-byte GET instead", exc.status)
        return self._probe_get()

    def _probe_head(self, url: str) -> SourceInfo:
        resp = self._send("HEAD", url, {})
        if not 200 <= resp.status_code < 300:
            self._raise_for_status(resp, "HEAD", url)
        resp.close()
        accept_ranges = resp.headers.get("Accept-Ranges", "").strip().lower()
        ranges = True if accept_ranges == "bytes" else False if accept_ranges == "none" else None
        return SourceInfo(size=content_length(resp), ranges=ranges, etag=resp.headers.get("ETag"))

    def _probe_get(self) -> SourceInfo:
        resp = self.get({"Range": "bytes=0-0"}, accept=(416,))
        try:
            etag = resp.headers.get("ETag")
            if resp.status_code == 416:  # only an empty object cannot satisfy bytes=0-0
                _s, _e, total = content_range(resp.headers.get("Content-Range"))
                if total != 0:
                    raise SourceError("416 to bytes=0-0 from a non-empty source", status=416)
                return SourceInfo(size=0, ranges=True, etag=etag)
            if resp.status_code == 206:
                start, end, total = content_range(resp.headers.get("Content-Range"))
                if start != 0 or end != 0:
                    raise SizeMismatch(
                        f"asked for bytes 0-0, got Content-Range {resp.headers.get('Content-Range')!r}"
                    )
                return SourceInfo(size=total, ranges=True, etag=etag)
            return SourceInfo(size=content_length(resp), ranges=False, etag=etag)
        finally:
            resp.close()

    # --- reading -------------------------------------------------------------------------------------------

    def _check_etag(self, resp: requests.Response) -> None:
        """Every response must come from the object the probe saw (strong ETags only: weak ones may vary)."""
        etag = resp.headers.get("ETag")
        strong = self.etag and etag and not self.etag.startswith("W/") and not etag.startswith("W/")
        if strong and etag != self.etag:
            raise ChecksumMismatch(f"source ETag changed during the transfer ({self.etag} -> {etag})")

    def read_range(self, start: int, length: int, into: bytearray) -> int:
        """Read bytes [start, start+length) into `into[:length]`; returns their CRC32C.

        A request for the whole object accepts a 200 as well as a 206; a 200 to anything less raises
        `RangeNotHonoured` without reading the body.
        """
        whole = start == 0 and self.size is not None and length == self.size
        headers = {"Range": f"bytes={start}-{start + length - 1}"} if length > 0 else {}
        resp = self.get(headers)
        try:
            if resp.status_code == 206:
                first, last, total = content_range(resp.headers.get("Content-Range"))
                if (first, last) != (start, start + length - 1):
                    raise SizeMismatch(
                        f"asked for bytes {start}-{start + length - 1}, "
                        f"got Content-Range {resp.headers.get('Content-Range')!r}"
                    )
                if self.size is not None and total is not None and total != self.size:
                    raise SizeMismatch(
                        f"source size changed: announced {self.size}, Content-Range says {total}",
                        expected=self.size,
                        actual=total,
                    )
            elif resp.status_code == 200:
                if not whole and length > 0:
                    raise RangeNotHonoured(f"server ignored Range bytes={start}-{start + length - 1} (200)")
            else:
                raise SourceError(f"unexpected HTTP {resp.status_code} to a GET", status=resp.status_code)
            announced = content_length(resp)
            if announced is not None and announced != length:
                raise SizeMismatch(
                    f"range of {length} bytes answered with Content-Length {announced}",
                    expected=length,
                    actual=announced,
                )
            self._check_etag(resp)
            check_encoding(resp)
            crc = self._read_exact(resp, memoryview(into)[:length], start)
            if announced is None:
                if not at_end(resp, length, length):
                    raise SizeMismatch(f"range of {length} bytes answered with more bytes", expected=length)
            else:
                release(resp)
            return crc
        finally:
            resp.close()

    def _read_exact(self, resp: requests.Response, view: memoryview, start: int) -> int:
        want = len(view)
        filled = 0
        crc = 0
        while filled < want:
            if self._cancel.is_set():
                raise Cancelled("cancelled")
            window = view[filled : min(want, filled + self._chunk)]
            try:
                count = readinto(resp, window)
            except READ_ERRORS as exc:
                raise read_error(exc, filled, want) from None
            if not count:
                raise SizeMismatch(
                    f"body of bytes {start}-{start + want - 1} ended after {filled} of {want} bytes",
                    expected=want,
                    actual=filled,
                    transient=True,
                )
            crc = crc32c(window[:count], crc)
            filled += count
            self._bytes_arrived()
        return crc

    def open_stream(self, offset: int, *, try_range: bool) -> SourceStream:
        """A GET from `offset` (`Range: bytes=offset-` if `try_range`); `position` says where it really starts."""
        headers = {"Range": f"bytes={offset}-"} if try_range and offset > 0 else {}
        resp = self.get(headers)
        try:
            if resp.status_code == 206:
                first, _last, total = content_range(resp.headers.get("Content-Range"))
                if first != offset:
                    raise SizeMismatch(f"asked for bytes {offset}-, got {resp.headers.get('Content-Range')!r}")
                position = offset
            elif resp.status_code == 200:
                position = 0
                total = content_length(resp)
            else:
                raise SourceError(f"unexpected HTTP {resp.status_code} to a GET", status=resp.status_code)
            if self.size is not None and total is not None and total != self.size:
                raise SizeMismatch(
                    f"source size changed: announced {self.size}, now {total}", expected=self.size, actual=total
                )
            self._check_etag(resp)
            check_encoding(resp)
            framed = (
                content_length(resp) is not None or "chunked" in resp.headers.get("Transfer-Encoding", "").lower()
            )
            return SourceStream(resp, position, total, framed)
        except BaseException:
            resp.close()
            raise

    def stream_read(self, stream: SourceStream, view: memoryview) -> tuple[int, int]:
        """Fill `view` from `stream`; returns (count, CRC32C); fewer bytes than asked only at the end."""
        return stream.read_into(view, chunk=self._chunk, on_bytes=self._bytes_arrived, cancel=self._cancel)
