"""The simulator itself: an HTTP server on 127.0.0.1 speaking the GoPro cloud API and serving pre-signed content.

Why a real server (not a mocked `requests`): the provider's retries, streaming, Range resumes, timeouts and
connection handling are exactly what breaks in production, and only real sockets exercise them. The server runs
in background threads, so a test drives it from the same process and reads its state (`requests`, `credentials`,
`source_sha256`) directly.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from devtools.gopro_simulator import content
from devtools.gopro_simulator.config import SimulatorConfig
from devtools.gopro_simulator.content import ContentKey
from devtools.gopro_simulator.faults import (
    API_ENDPOINTS,
    AbsurdKind,
    AbsurdValue,
    Blocked,
    CutConnection,
    Endpoint,
    Faults,
    IgnoreRange,
    ListingFault,
    MalformedListing,
    NotFound,
    RateLimit,
    ServerError,
    ShortPage,
    SlowFirstByte,
    VendorRefusal,
)
from devtools.gopro_simulator.library import READY_STATES, SimMedia, generate_library

ACCEPT_MEDIA_TYPE = "application/vnd.gopro.jk.media+json"
ACCEPT_VERSION = "2.0.0"
# The pipeline's media type, and the one GoPro's web app sends to `/media/search`.
ACCEPTED_MEDIA_TYPES = frozenset({ACCEPT_MEDIA_TYPE, "application/vnd.gopro.jk.media.search+json"})
PROCESSING_STATES = ("rendering", "pretranscoding", "transcoding", "ready", "failure")
_LOGGED_HEADERS = ("accept", "range", "content-type", "user-agent", "origin", "referer", "connection")
_REDACTED_QUERY = frozenset({"signature", "x-amz-signature"})
# CloudFront's URL-safe base64 (RFC 4648 with `+=/` spelt `-_~`), as in its signed links.
_CLOUDFRONT_BASE64 = str.maketrans("+=/", "-_~")


def token_fingerprint(token: str) -> str:
    """A short, non-reversible name for a token: the request log stores this, never the token."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SimCredentials:
    """What a client should use right now (all fake). Secrets are kept out of `repr`."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_token: str = field(repr=False)
    user_id: str
    username: str
    password: str = field(repr=False)


@dataclass
class RequestRecord:
    """One request as the simulator saw it. Tokens appear only as `token_fingerprint` values.

    The record joins the log when the response headers go out; `bytes_sent` and `completed` keep changing until
    the body is finished (or cut).
    """

    time: float
    method: str
    path: str
    query: dict[str, list[str]]
    endpoint: str | None
    headers: dict[str, str]
    auth: str | None = None  # "bearer:sha256:…" / "cookie:sha256:…"
    media_id: str | None = None
    grant_type: str | None = None
    status: int = 0
    fault: str | None = None
    bytes_sent: int = 0
    completed: bool = False


class _TokenError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class TokenStore:
    """OAuth state of the simulated account: the client credential, refresh tokens, issued access tokens."""

    def __init__(self, sim: GoProSimulator, config: SimulatorConfig) -> None:
        self._sim = sim
        self._lock = threading.Lock()

        def fake(name: str, length: int) -> str:
            return hashlib.sha256(f"gopro-simulator:{config.seed}:{name}".encode()).hexdigest()[:length]

        self.client_id = config.client_id or f"sim-client-{fake('client_id', 16)}"
        self.client_secret = config.client_secret or f"sim-secret-{fake('client_secret', 32)}"
        self.username = config.username
        self.password = config.password or f"sim-pass-{fake('password', 16)}"
        tag = fake("user_id", 32)
        self.user_id = config.user_id or f"{tag[:8]}-{tag[8:12]}-{tag[12:16]}-{tag[16:20]}-{tag[20:32]}"
        self.refresh_token = config.refresh_token or f"sim-rt-{fake('refresh_token', 32)}"
        self._valid_refresh = {self.refresh_token}
        self._retired_refresh: set[str] = set()
        self._blacklisted = set(config.blacklisted_refresh_tokens)
        self._access: dict[str, float] = {}
        self.access_token = self._new_access_token()
        if config.initial_access_token_expired:
            self._access[self.access_token] = sim.now() - 1

    def _new_access_token(self) -> str:
        token = "sim-at-" + secrets.token_urlsafe(24)
        self._access[token] = self._sim.now() + self._sim.config.access_token_ttl
        return token

    def credentials(self) -> SimCredentials:
        with self._lock:
            return SimCredentials(
                client_id=self.client_id,
                client_secret=self.client_secret,
                refresh_token=self.refresh_token,
                access_token=self.access_token,
                user_id=self.user_id,
                username=self.username,
                password=self.password,
            )

    def issue_access_token(self) -> str:
        """A fresh valid access token without a grant (for tests of the pasted-cookie credential mode)."""
        with self._lock:
            self.access_token = self._new_access_token()
            return self.access_token

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        ok_id = client_id is not None and hmac.compare_digest(client_id, self.client_id)
        ok_secret = client_secret is not None and hmac.compare_digest(client_secret, self.client_secret)
        if not (ok_id and ok_secret):
            raise _TokenError(401, "invalid_client", "Client authentication failed.")

    def grant_password(self, username: str | None, password: str | None) -> dict[str, Any]:
        with self._lock:
            if username != self.username or password is None or not hmac.compare_digest(password, self.password):
                raise _TokenError(400, "invalid_grant", "The provided authorization grant is invalid.")
            if self.refresh_token in self._blacklisted or self.refresh_token in self._retired_refresh:
                # A new sign-in after GoPro revoked the refresh token starts a new grant with a new refresh token.
                self.refresh_token = "sim-rt-" + secrets.token_hex(16)
                self._valid_refresh.add(self.refresh_token)
            return self._answer(self.refresh_token)

    def grant_refresh(self, refresh_token: str | None) -> dict[str, Any]:
        with self._lock:
            if not refresh_token:
                raise _TokenError(400, "invalid_request", "Missing refresh_token.")
            if refresh_token in self._blacklisted:
                raise _TokenError(
                    self._sim.config.blacklist_status, "token_blacklisted", "The refresh token has been revoked."
                )
            if refresh_token in self._retired_refresh or refresh_token not in self._valid_refresh:
                raise _TokenError(400, "invalid_grant", "The refresh token is invalid or was already used.")
            if self._sim.config.rotate_refresh_tokens:
                self._valid_refresh.discard(refresh_token)
                self._retired_refresh.add(refresh_token)
                refresh_token = "sim-rt-" + secrets.token_hex(16)
                self._valid_refresh.add(refresh_token)
                self.refresh_token = refresh_token
            return self._answer(refresh_token)

    def _answer(self, refresh_token: str) -> dict[str, Any]:
        self.access_token = self._new_access_token()
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self._sim.config.access_token_ttl,
            "refresh_token": refresh_token,
            "resource_owner_id": self.user_id,
        }

    def check_access(self, token: str) -> str:
        """`ok`, `expired` or `unknown`."""
        with self._lock:
            expires_at = self._access.get(token)
        if expires_at is None:
            return "unknown"
        return "ok" if self._sim.now() < expires_at else "expired"

    def expire_all(self) -> None:
        with self._lock:
            moment = self._sim.now() - 1
            for token in self._access:
                self._access[token] = min(self._access[token], moment)

    def blacklist(self, token: str | None) -> None:
        with self._lock:
            self._blacklisted.add(token or self.refresh_token)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections would otherwise make stop() wait for idle clients
    allow_reuse_address = True
    request_queue_size = 128  # the stdlib's 5 drops SYNs under parallel downloads (1 s retransmit stalls)

    def __init__(self, address: tuple[str, int], sim: GoProSimulator) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections is routine here (cut downloads, stop()); anything else is worth showing.
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handle_error(request, client_address)


class GoProSimulator:
    """A GoPro cloud on 127.0.0.1 (API in the package docstring); a context manager, or call start/stop."""

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        base = config or SimulatorConfig()
        self.config = base.with_overrides(**overrides) if overrides else base
        self._lock = threading.RLock()
        self._clock_offset = 0.0
        media = list(self.config.media) if self.config.media is not None else generate_library(self.config)
        self._media: dict[str, SimMedia] = {}
        for medium in media:
            self.add_media(medium)
        self._sha_cache: dict[tuple[str, str, int, int], str] = {}
        self._signing_key = secrets.token_bytes(32)
        self._log: list[RequestRecord] = []
        self.tokens = TokenStore(self, self.config)
        self.faults = Faults(self, self.config.faults)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> GoProSimulator:
        if self._server is not None:
            return self
        self._server = _Server((self.config.host, self.config.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="gopro-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GoProSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """API and auth base URL (the real service has both on https://api.gopro.com)."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def content_host(self) -> str:
        """Host name of the pre-signed content links (differs from the API's when `content_host` is set)."""
        return self.config.content_host or self.config.host

    @property
    def content_base_url(self) -> str:
        return f"http://{self.content_host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for the pipeline (names as in pipeline.config.EnvVar) pointing at this simulator."""
        creds = self.credentials
        return {
            "GOPRO_API_URL": self.base_url,
            "GOPRO_AUTH_URL": self.base_url,
            "GOPRO_CLIENT_ID": creds.client_id,
            "GOPRO_CLIENT_SECRET": creds.client_secret,
            "GOPRO_REFRESH_TOKEN": creds.refresh_token,
        }

    # -- clock ---------------------------------------------------------------------------------------------------

    def now(self) -> float:
        """The simulator's clock (wall clock plus `advance_clock` offsets): token and link expiry use it."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Jump forward, e.g. past the access token lifetime or a link's `Expires`, without sleeping."""
        with self._lock:
            self._clock_offset += seconds

    # -- credentials ---------------------------------------------------------------------------------------------

    @property
    def credentials(self) -> SimCredentials:
        return self.tokens.credentials()

    def issue_access_token(self) -> str:
        return self.tokens.issue_access_token()

    # -- library -------------------------------------------------------------------------------------------------

    @property
    def library(self) -> list[SimMedia]:
        """Copies of the media currently present (not deleted), in the order they were generated or added."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._media.values() if not m.deleted]

    def media(self, media_id: str) -> SimMedia:
        """A copy of one medium, deleted ones included; KeyError when unknown."""
        with self._lock:
            return copy.deepcopy(self._media[media_id])

    def add_media(self, medium: SimMedia) -> None:
        """Add (or replace) a medium at runtime, e.g. an upload that appears while a listing is being paged."""
        with self._lock:
            self._media[medium.id] = copy.deepcopy(medium)

    def delete_media(self, media_id: str) -> None:
        with self._lock:
            self._media[media_id].deleted = True

    def set_ready_state(self, media_id: str, state: str) -> None:
        if state not in READY_STATES:
            raise ValueError(f"ready_to_view must be one of {READY_STATES}")
        with self._lock:
            self._media[media_id].ready_to_view = state

    def _live_media(self, media_id: str) -> SimMedia | None:
        with self._lock:
            medium = self._media.get(media_id)
            return None if medium is None or medium.deleted else medium

    # -- expected bytes ------------------------------------------------------------------------------------------

    def source_size(self, media_id: str, item: int = 1) -> int:
        """Size of original item `item` (what an archiver must store; for a burst, the photo `files[item-1]`)."""
        return self._media_or_raise(media_id).sizes[item - 1]

    def source_bytes(self, media_id: str, item: int = 1) -> bytes:
        return self.content_bytes(media_id, "source", item)

    def source_sha256(self, media_id: str, item: int = 1) -> str:
        return self.content_sha256(media_id, "source", item)

    def content_size(self, media_id: str, rendition: str, item: int = 1) -> int:
        medium = self._media_or_raise(media_id)
        if rendition == "source":
            return medium.sizes[item - 1]
        found = medium.renditions().get((rendition, item))
        if found is None:
            raise KeyError(f"{media_id} has no rendition {rendition}/{item}")
        return found.size

    def content_bytes(self, media_id: str, rendition: str, item: int = 1) -> bytes:
        """Bytes of any served object (e.g. `proxy`, to assert an archive did NOT store them)."""
        size = self.content_size(media_id, rendition, item)
        return content.read(self.config.seed, ContentKey(media_id, rendition, item), 0, size)

    def content_sha256(self, media_id: str, rendition: str, item: int = 1) -> str:
        size = self.content_size(media_id, rendition, item)
        cache_key = (media_id, rendition, item, size)
        with self._lock:
            cached = self._sha_cache.get(cache_key)
        if cached is None:
            cached = content.sha256(self.config.seed, ContentKey(media_id, rendition, item), size)
            with self._lock:
                self._sha_cache[cache_key] = cached
        return cached

    def _media_or_raise(self, media_id: str) -> SimMedia:
        with self._lock:
            return self._media[media_id]

    # -- request log ---------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """The request log so far (a snapshot list; the records themselves are live)."""
        with self._lock:
            return list(self._log)

    def requests_to(self, endpoint: str) -> list[RequestRecord]:
        return [record for record in self.requests if record.endpoint == endpoint]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)
        if self.config.log_requests:
            fault = f" fault={record.fault}" if record.fault else ""
            line = f"[gopro-sim] {record.method} {record.path} -> {record.status}{fault}"
            print(line, file=sys.stderr, flush=True)

    # -- pre-signed links ----------------------------------------------------------------------------------------

    def _signature(self, method: str, path: str, expires: str) -> str:
        message = f"{method}\n{path}\n{expires}".encode()
        digest = hmac.new(self._signing_key, message, hashlib.sha256).digest()
        return base64.b64encode(digest).decode().translate(_CLOUDFRONT_BASE64)

    @property
    def key_pair_id(self) -> str:
        """The CloudFront key pair id in every link (fixed per seed, like a distribution's)."""
        return "APKA" + hashlib.sha256(f"key-pair:{self.config.seed}".encode()).hexdigest()[:16].upper()

    def signed_url(self, path: str, method: str = "GET") -> str:
        """A CloudFront-style signed link (`Expires`, `Signature`, `Key-Pair-Id`, canned policy) to this server's
        content endpoint, valid for `faults.url_ttl` seconds, as GoPro's descriptors hand out."""
        expires = str(int(self.now()) + self.faults.url_ttl)
        query = {
            "Expires": expires,
            "Signature": self._signature(method, path, expires),
            "Key-Pair-Id": self.key_pair_id,
        }
        return f"{self.content_base_url}{path}?{urlencode(query)}"

    def check_signature(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[str, str] | None:
        """None when the link is good for `method`, else the error (code, message) CloudFront would answer."""
        try:
            expires = query["Expires"][0]
            signature = query["Signature"][0]
            key_pair = query["Key-Pair-Id"][0]
            deadline = int(expires)
        except (KeyError, IndexError, ValueError):
            return "MissingKey", "Missing Key-Pair-Id query parameter or cookie value"
        if key_pair != self.key_pair_id:
            return "InvalidKey", "Unknown Key"
        methods = [method] if self.config.strict_signed_method else ["GET", "HEAD"]
        if not any(hmac.compare_digest(signature, self._signature(m, path, expires)) for m in methods):
            return "SignatureDoesNotMatch", "The request signature we calculated does not match the one provided."
        if self.now() >= deadline:
            return "AccessDenied", "Request has expired"
        return None

    # -- API answers (called by the handler) ---------------------------------------------------------------------

    def search_page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """The `/media/search` answer for a query, before any malformed-listing fault."""

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        errors: list[dict[str, Any]] = []
        try:
            per_page = int(one("per_page") or self.config.default_per_page)
            page = int(one("page") or 1)
        except ValueError:
            per_page, page = 0, 0
        if per_page < 1 or page < 1:
            errors.append(_api_error("invalid_parameter", 400, "page and per_page must be positive integers"))
        order_by = one("order_by") or "created_at"
        if order_by not in ("created_at", "captured_at"):
            errors.append(_api_error("invalid_parameter", 400, "order_by must be created_at or captured_at"))
        if errors:
            return 400, {"_embedded": {"errors": errors, "media": []}}
        per_page = min(per_page, self.config.max_per_page)
        ranges: list[tuple[str, datetime | None, datetime | None]] = []
        for name, attribute in RANGE_FILTERS.items():
            value = one(name)
            if value is None or not self.config.honour_ranges:
                continue
            bounds = _parse_range_filter(value)
            if bounds is None:
                # The live service answers a malformed range with a 500 (G2C), not a 400.
                error = _api_error("internal_error", 500, f"could not parse {name}")
                return 500, {"_embedded": {"errors": [error], "media": []}}
            ranges.append((attribute, *bounds))
        with self._lock:
            media = [copy.deepcopy(m) for m in self._media.values() if not m.deleted]
        for attribute, low, high in ranges:
            media = [m for m in media if _within(getattr(m, attribute), low, high)]
        states = _csv(one("processing_states"))
        if states:
            media = [m for m in media if _matches_processing_state(m.ready_to_view, states)]
        types = {t.lower() for t in _csv(one("type"))}
        if types:
            media = [m for m in media if m.type.lower() in types]
        # Newest first, as the web library shows them; ties broken by id so pages are stable.
        media.sort(key=lambda m: (getattr(m, order_by), m.id), reverse=True)
        total = len(media)
        start = (page - 1) * per_page
        chosen = media[start : start + per_page]
        if self.faults.repeat_last_item and page > 1 and 0 < start <= total and chosen:
            chosen = [media[start - 1], *chosen]
        wanted = [f for f in _csv(one("fields")) if f]
        items = []
        for medium in chosen:
            full = medium.listing(self.tokens.user_id)
            items.append({name: full[name] for name in wanted if name in full} if wanted else full)
        pages = {
            "current_page": page,
            "per_page": per_page,
            "total_items": total,
            "total_pages": math.ceil(total / per_page),
        }
        return 200, {"_pages": pages, "_embedded": {"errors": [], "media": items}}

    def descriptor(self, medium: SimMedia) -> dict[str, Any]:
        """The `/media/{id}/download` answer with freshly signed links."""
        sections: dict[str, list[dict[str, Any]]] = {name: [] for name in ("files", "variations", "sprites")}
        sections["sidecar_files"] = []
        for entry in medium.descriptor():
            rendition = entry.rendition
            path = f"/content/{quote(medium.id)}/{rendition.rendition}/{rendition.item}.{rendition.ext}"
            sections[entry.section].append(
                {"url": self.signed_url(path, "GET"), "head": self.signed_url(path, "HEAD"), **entry.fields}
            )
        return {"filename": medium.descriptor_name, "_embedded": sections}


# Server-side date filters (`<ISO>,<ISO>`) and the medium attribute each bounds.
RANGE_FILTERS = {"created_range": "created_at", "captured_range": "captured_at", "updated_range": "created_at"}


def _parse_range_filter(value: str) -> tuple[datetime | None, datetime | None] | None:
    """`<ISO>,<ISO>` (either end may be empty) as aware datetimes; None when malformed."""
    parts = value.split(",")
    if len(parts) != 2 or not any(p.strip() for p in parts):
        return None
    bounds: list[datetime | None] = []
    for part in parts:
        text = part.strip()
        if not text:
            bounds.append(None)
            continue
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        bounds.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return bounds[0], bounds[1]


def _within(moment: datetime | None, low: datetime | None, high: datetime | None) -> bool:
    if moment is None:
        return False
    return (low is None or moment >= low) and (high is None or moment <= high)


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _matches_processing_state(ready_to_view: str, states: list[str]) -> bool:
    """The listing filters by pipeline stage; map the `ready_to_view` values onto those stages (lenient guess)."""
    if ready_to_view in states:
        return True
    in_progress = ready_to_view not in ("ready", "failure")
    return in_progress and any(s in ("rendering", "pretranscoding", "transcoding") for s in states)


def _make_absurd(item: dict[str, Any], kind: AbsurdKind) -> None:
    if kind == AbsurdKind.HUGE_SIZE:
        item["file_size"] = 10**15
    elif kind == AbsurdKind.NEGATIVE_SIZE:
        item["file_size"] = -1
    elif kind == AbsurdKind.BAD_DATE:
        item["created_at"] = item["captured_at"] = "0000-13-45T99:99:99Z"
    elif kind == AbsurdKind.BAD_ID:
        item["id"] = f"../{item.get('id', '')}"


def _api_error(reason: str, code: int, description: str) -> dict[str, Any]:
    return {"reason": reason, "code": code, "description": description, "id": secrets.token_hex(8)}


def _s3_error(code: str, message: str) -> bytes:
    request_id = secrets.token_hex(8).upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    ).encode()


# The shape of CloudFront's block page (DG#11, ROB 7d318b5): HTML, status 403, "Request blocked".
_BLOCKED_PAGE = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">\n'
    b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY>\n"
    b"<H1>403 ERROR</H1><H2>The request could not be satisfied.</H2><HR noshade size=1px>\n"
    b"Request blocked.\nWe can't connect to the server for this app or website at this time.\n"
    b"<BR clear=all><HR noshade size=1px><PRE>Generated by cloudfront (CloudFront)</PRE></BODY></HTML>\n"
)


def _html_error(status: int, reason: str) -> bytes:
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) inclusive, None to ignore the header (serve 200), or "unsatisfiable" (416).

    One range only, as S3: a syntactically invalid or multi-range header is ignored, as RFC 9110 allows.
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or (match.group(1) == "" and match.group(2) == ""):
        return None
    first_text, last_text = match.groups()
    if first_text == "":
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        return "unsatisfiable"
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


class _Throttle:
    """Token bucket for one response: at most `rate` bytes/s, bursts of at most one chunk.

    The rate is read again for every chunk, so `faults.set_bandwidth` takes effect mid-transfer.
    """

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._allowance: float | None = None
        self._last = time.monotonic()

    @staticmethod
    def chunk_size(rate: int | None) -> int:
        return content.BLOCK_SIZE if rate is None else max(1024, min(64 * 1024, rate // 20))

    def wait(self, amount: int) -> None:
        rate = self._faults.bandwidth
        if rate is None:
            return
        now = time.monotonic()
        capacity = float(max(amount, self.chunk_size(rate)))
        if self._allowance is None:
            self._allowance = capacity
        self._allowance = min(capacity, self._allowance + (now - self._last) * rate)
        self._last = now
        if self._allowance >= amount:
            self._allowance -= amount
            return
        time.sleep((amount - self._allowance) / rate)
        self._allowance = 0.0
        self._last = time.monotonic()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GoProSimulator/1.0"
    timeout = 120  # idle keep-alive connections give up eventually
    server: _Server

    # -- plumbing ------------------------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log (without tokens) replaces the stdlib's stderr lines."""

    def version_string(self) -> str:
        return self.server_version

    @property
    def sim(self) -> GoProSimulator:
        return self.server.sim

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        self._route_path = split.path
        self._query = parse_qs(split.query, keep_blank_values=True)
        self._body_sent = False
        self._record = RequestRecord(
            time=time.time(),
            method=self.command,
            path=split.path,
            query={k: (["<redacted>"] if k.lower() in _REDACTED_QUERY else v) for k, v in self._query.items()},
            endpoint=None,
            headers=self._logged_headers(),
            auth=self._auth_fingerprint(),
        )
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True
        except Exception as error:  # a simulator bug: answer 500 rather than hang the client
            self.close_connection = True
            if not self._body_sent:
                self._record.fault = f"simulator error: {error!r}"
                self._send(500, _html_error(500, "Internal Server Error"), "text/html")
            raise
        finally:
            if self._record.status == 0:
                self.sim._record(self._record)

    def _logged_headers(self) -> dict[str, str]:
        logged = {name: value for name, value in self.headers.items() if name.lower() in _LOGGED_HEADERS}
        if "Authorization" in self.headers:
            logged["Authorization"] = "<redacted>"
        if "Cookie" in self.headers:
            logged["Cookie"] = "<redacted>"
        return logged

    def _auth_fingerprint(self) -> str | None:
        bearer = self._bearer()
        if bearer:
            return "bearer:" + token_fingerprint(bearer)
        cookie = self._cookies().get("gp_access_token")
        return "cookie:" + token_fingerprint(cookie) if cookie else None

    def _bearer(self) -> str | None:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return value.strip() or None

    def _cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_head(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self._record.status = status
        self.sim._record(self._record)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, extra: Iterable[tuple[str, str]] = ()) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra]
        self._send_head(status, headers)
        if self.command != "HEAD":
            self.wfile.write(body)
        self._body_sent = True
        self._record.bytes_sent = len(body) if self.command != "HEAD" else 0
        self._record.completed = True

    def _send_json(self, status: int, payload: Any, extra: Iterable[tuple[str, str]] = ()) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._send(status, body, "application/json; charset=utf-8", extra)

    # -- routing -------------------------------------------------------------------------------------------------

    def _route(self) -> None:
        path, method = self._route_path, self.command
        if path == "/v1/oauth2/token":
            self._record.endpoint = Endpoint.TOKEN.value
            if method != "POST":
                self._read_body()
                self._send_json(405, {"error": "method_not_allowed"}, [("Allow", "POST")])
                return
            self._api(Endpoint.TOKEN, self._token)
            return
        if path == "/media/search":
            self._record.endpoint = Endpoint.SEARCH.value
            if method != "GET":
                self._read_body()
                self._send_json(405, {"error": "method_not_allowed"}, [("Allow", "GET")])
                return
            self._api(Endpoint.SEARCH, self._search)
            return
        if path == "/media/user":
            self._record.endpoint = Endpoint.USER.value
            if method != "GET":
                self._read_body()
                self._send_json(405, {"error": "method_not_allowed"}, [("Allow", "GET")])
                return
            self._api(Endpoint.USER, self._user)
            return
        match = re.fullmatch(r"/media/([^/]+)/download", path)
        if match:
            self._record.endpoint = Endpoint.DOWNLOAD.value
            self._record.media_id = match.group(1)
            if method != "GET":
                self._read_body()
                self._send_json(405, {"error": "method_not_allowed"}, [("Allow", "GET")])
                return
            self._api(Endpoint.DOWNLOAD, lambda: self._download(match.group(1)))
            return
        match = re.fullmatch(r"/media/([^/]+)/moments", path)
        if match:
            self._record.endpoint = Endpoint.MOMENTS.value
            self._record.media_id = match.group(1)
            if method != "GET":
                self._read_body()
                self._send_json(405, {"error": "method_not_allowed"}, [("Allow", "GET")])
                return
            self._api(Endpoint.MOMENTS, lambda: self._moments(match.group(1)))
            return
        match = re.fullmatch(r"/content/([^/]+)/([^/]+)/(\d+)(?:\.[A-Za-z0-9]+)?", path)
        if match:
            self._record.endpoint = Endpoint.CONTENT.value
            self._record.media_id = match.group(1)
            self._content(match.group(1), match.group(2), int(match.group(3)))
            return
        self._read_body()
        self._send_json(404, {"error": "not_found", "path": path})

    def _faults_before(self, endpoint: Endpoint, media_id: str | None) -> bool:
        """Apply slow-first-byte, 429 and 5xx rules; True when an error answer was sent."""
        faults = self.sim.faults

        def hits(rule_endpoint: str | None) -> bool:
            return endpoint in API_ENDPOINTS if rule_endpoint is None else rule_endpoint == endpoint

        slow = faults.take(
            SlowFirstByte,
            lambda r: (r.endpoint is None or r.endpoint == endpoint) and r.media_id in (None, media_id),
        )
        if slow is not None:
            self._record.fault = f"slow_first_byte:{slow.delay}"
            time.sleep(slow.delay)
        limited = faults.take(RateLimit, lambda r: hits(r.endpoint))
        if limited is not None:
            self._record.fault = "rate_limit"
            headers = [("Retry-After", str(limited.retry_after))]
            if endpoint == Endpoint.CONTENT:
                body = _s3_error("SlowDown", "Please reduce your request rate.")
                self._send(429, body, "application/xml", headers)
            else:
                self._send_json(429, {"error": "too_many_requests", "message": "Rate limit exceeded"}, headers)
            return True
        if endpoint != Endpoint.CONTENT and self._refused(faults, hits):
            return True
        failing = faults.take(ServerError, lambda r: hits(r.endpoint) and r.media_id in (None, media_id))
        if failing is not None:
            self._record.fault = f"server_error:{failing.status}"
            reason = self.responses.get(failing.status, ("Server Error",))[0]
            self._send(failing.status, _html_error(failing.status, reason), "text/html")
            return True
        return False

    def _refused(self, faults: Faults, hits: Callable[[str | None], bool]) -> bool:
        """CloudFront's HTML block page (403), or the API refusing our vendor version (406/410), if a rule says."""
        if faults.take(Blocked, lambda r: hits(r.endpoint)) is not None:
            self._record.fault = "blocked"
            self._send(403, _BLOCKED_PAGE, "text/html")
            return True
        refusal = faults.take(VendorRefusal, lambda r: hits(r.endpoint))
        if refusal is not None:
            self._record.fault = f"vendor_refusal:{refusal.status}"
            if refusal.status == 406:
                self._not_acceptable()
            else:
                gone = {"error": "gone", "message": "This version of the API is no longer available"}
                self._send_json(410, gone)
            return True
        return False

    def _api(self, endpoint: Endpoint, answer: Callable[[], None]) -> None:
        body = self._read_body() if self.command == "POST" else b""
        self._post_body = body
        if self._faults_before(endpoint, self._record.media_id):
            return
        answer()

    # -- token ---------------------------------------------------------------------------------------------------

    def _token(self) -> None:
        tokens = self.sim.tokens
        content_type = self.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" not in content_type:
            self._send_json(400, {"error": "invalid_request", "error_description": "Form-encoded body required."})
            return
        form = {k: v[0] for k, v in parse_qs(self._post_body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        self._record.grant_type = grant
        try:
            tokens.check_client(form.get("client_id"), form.get("client_secret"))
            if grant == "password":
                answer = tokens.grant_password(form.get("username"), form.get("password"))
            elif grant == "refresh_token":
                answer = tokens.grant_refresh(form.get("refresh_token"))
            else:
                raise _TokenError(400, "unsupported_grant_type", f"Unsupported grant type: {grant!r}.")
        except _TokenError as error:
            self._send_json(error.status, {"error": error.error, "error_description": error.description})
            return
        self._send_json(200, answer, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def _user(self) -> None:
        """`GET /media/user`: who the token belongs to (the pipeline's cheap preflight call)."""
        if not self._authorized():
            return
        self._send_json(200, {"id": self.sim.tokens.user_id, "email": self.sim.tokens.username})

    # -- authenticated API ---------------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        """Bearer token or the web app's cookies; 401 otherwise (an expired token included)."""
        token = self._bearer()
        cookies = self._cookies()
        if token is None:
            token = cookies.get("gp_access_token")
            user = cookies.get("gp_user_id")
            if token is not None and user is not None and user != self.sim.tokens.user_id:
                token = None
        state = self.sim.tokens.check_access(token) if token else "missing"
        if state == "ok":
            return True
        description = {
            "missing": "Authentication required.",
            "expired": "The access token expired.",
            "unknown": "The access token is invalid.",
        }[state]
        self._record.fault = self._record.fault or f"auth:{state}"
        challenge = f'Bearer error="invalid_token", error_description="{description}"'
        self._send_json(
            401, {"error": "invalid_token", "error_description": description}, [("WWW-Authenticate", challenge)]
        )
        return False

    def _accepts_media_json(self) -> bool:
        """The jk media type with version 2.0.0, as the real API requires (406 otherwise)."""
        for candidate in self.headers.get("Accept", "").split(","):
            media_type, *params = (part.strip() for part in candidate.split(";"))
            if media_type.lower() != ACCEPT_MEDIA_TYPE:
                continue
            versions = [p.split("=", 1)[1].strip().strip('"') for p in params if p.lower().startswith("version=")]
            if not versions or versions[0] == ACCEPT_VERSION:
                return True
        return False

    def _not_acceptable(self) -> None:
        self._send_json(406, {"error": "not_acceptable", "message": f"Accept {ACCEPT_MEDIA_TYPE}; version=2.0.0"})

    def _search(self) -> None:
        # The live API checks Accept before the token (G2C): a missing one is 406 even without credentials.
        accepted = self._accepted_version()
        if accepted is None:
            self._not_acceptable()
            return
        if accepted != ACCEPT_VERSION:
            self._send_json(410, {"error": "gone", "message": f"version {accepted} is no longer served"})
            return
        if not self._authorized():
            return
        status, payload = self.sim.search_page(self._query)
        page = payload.get("_pages", {}).get("current_page")
        if status == 200:
            fault = self.sim.faults.take(MalformedListing, lambda r: r.page is None or r.page == page)
            if fault is not None:
                self._record.fault = f"malformed_listing:{fault.kind}"
                self._malformed(ListingFault(fault.kind), payload)
                return
            self._listing_faults(payload, page)
        self._send_json(status, payload)

    def _accepted_version(self) -> str | None:
        """The `version=` of the first jk media type in Accept (no version: the current one); None without one."""
        for candidate in self.headers.get("Accept", "").split(","):
            media_type, *params = (part.strip() for part in candidate.split(";"))
            if media_type.lower() not in ACCEPTED_MEDIA_TYPES:
                continue
            versions = [p.split("=", 1)[1].strip().strip('"') for p in params if p.lower().startswith("version=")]
            return versions[0] if versions else ACCEPT_VERSION
        return None

    def _listing_faults(self, payload: dict[str, Any], page: int | None) -> None:
        """Absurd values in single media, then a short page: both answer 200 with `_pages` untouched."""
        faults = self.sim.faults
        media: list[dict[str, Any]] = payload["_embedded"]["media"]
        for index, item in enumerate(media):
            rule = faults.take(
                AbsurdValue,
                lambda r, i=index, m=item: r.media_id == m.get("id") or (r.media_id is None and i == 0),
            )
            if rule is not None:
                self._record.fault = f"absurd_value:{rule.kind}"
                _make_absurd(item, AbsurdKind(rule.kind))
        short = faults.take(ShortPage, lambda r: r.page is None or r.page == page)
        if short is not None and len(media) > short.items:
            self._record.fault = f"short_page:{short.items}"
            del media[short.items :]

    def _malformed(self, kind: ListingFault, payload: dict[str, Any]) -> None:
        media: list[dict[str, Any]] = payload["_embedded"]["media"]
        if kind == ListingFault.HTML_502:
            self._send(502, _html_error(502, "Bad Gateway"), "text/html")
            return
        if kind == ListingFault.TRUNCATED_JSON:
            body = json.dumps(payload, separators=(",", ":")).encode()
            self._send(200, body[: max(1, len(body) // 2)], "application/json; charset=utf-8")
            return
        if kind == ListingFault.MISSING_FIELDS:
            if media:
                media[0].pop("id", None)
            if len(media) > 1:
                media[1].pop("type", None)
            payload["_pages"].pop("total_items", None)
        elif kind == ListingFault.WRONG_TYPES and media:
            first = media[0]
            for name in ("file_size", "item_count"):
                if name in first:
                    first[name] = str(first[name])
            if "captured_at" in first:
                first["captured_at"] = int(time.time())
            if "filename" in first:
                first["filename"] = None
        elif kind == ListingFault.EMPTY_PAGE:
            media.clear()
        elif kind == ListingFault.EMBEDDED_ERRORS:
            media.clear()
            payload["_embedded"]["errors"] = [_api_error("internal_error", 500, "Search backend unavailable")]
        self._send_json(200, payload)

    def _download(self, media_id: str) -> None:
        if not self._authorized():
            return
        if self.sim.config.require_accept_on_download and not self._accepts_media_json():
            self._not_acceptable()
            return
        medium = self.sim._live_media(media_id)
        transient = self.sim.faults.take(NotFound, lambda r: r.media_id in (None, media_id))
        if transient is not None:
            self._record.fault = "transient_not_found"
        if medium is None or transient is not None:
            error = _api_error("not_found", 404, f"Medium {media_id} not found")
            self._send_json(404, {"_embedded": {"errors": [error]}})
            return
        self._send_json(200, self.sim.descriptor(copy.deepcopy(medium)))

    def _moments(self, media_id: str) -> None:
        if not self._authorized():
            return
        medium = self.sim._live_media(media_id)
        if medium is None:
            error = _api_error("not_found", 404, f"Medium {media_id} not found")
            self._send_json(404, {"_embedded": {"errors": [error]}})
            return
        self._send_json(200, medium.moments_answer())

    # -- content -------------------------------------------------------------------------------------------------

    def _content(self, media_id: str, rendition_name: str, item: int) -> None:
        sim = self.sim
        if self.command not in ("GET", "HEAD"):
            self._read_body()
            self._send(405, _s3_error("MethodNotAllowed", "Method not allowed"), "application/xml")
            return
        if self._faults_before(Endpoint.CONTENT, media_id):
            return
        problem = sim.check_signature(self.command, self._route_path, self._query)
        if problem is not None:
            self._record.fault = self._record.fault or f"signature:{problem[0]}"
            self._send(403, _s3_error(*problem), "application/xml")
            return
        medium = sim._live_media(media_id)
        rendition = medium.renditions().get((rendition_name, item)) if medium else None
        if medium is None or rendition is None:
            self._send(404, _s3_error("NoSuchKey", "The specified key does not exist."), "application/xml")
            return
        size = rendition.size
        key = ContentKey(media_id, rendition_name, item)
        assert medium.created_at is not None
        headers = [
            ("Content-Type", rendition.content_type),
            ("ETag", content.etag(sim.config.seed, key, size)),
            ("Accept-Ranges", "bytes"),
            ("Last-Modified", format_datetime(medium.created_at.astimezone(UTC), usegmt=True)),
            ("x-amz-request-id", secrets.token_hex(8).upper()),
        ]
        first, last, status = 0, size - 1, 200
        range_header = self.headers.get("Range")
        if range_header is not None:
            wanted = parse_range(range_header, size)
            ignored = sim.faults.take(IgnoreRange, lambda r: r.media_id in (None, media_id))
            if ignored is not None:
                self._record.fault = "ignore_range"
            elif wanted == "unsatisfiable":
                body = _s3_error("InvalidRange", "The requested range is not satisfiable")
                self._send(416, body, "application/xml", [("Content-Range", f"bytes */{size}")])
                return
            elif isinstance(wanted, tuple):
                first, last = wanted
                status = 206
                headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        length = last - first + 1 if size else 0
        headers.append(("Content-Length", str(length)))
        self._send_head(status, headers)
        self._body_sent = True
        if self.command == "HEAD":
            self._record.completed = True
            return
        cut = sim.faults.take(CutConnection, lambda r: r.media_id in (None, media_id) and r.after_bytes < length)
        self._stream(key, first, first + length, cut)

    def _stream(self, key: ContentKey, start: int, stop: int, cut: CutConnection | None) -> None:
        """Send bytes [start, stop) block by block (one 1 MiB block in memory), throttled, maybe cut short."""
        faults, seed = self.sim.faults, self.sim.config.seed
        throttle = _Throttle(faults)
        end = stop if cut is None else start + cut.after_bytes
        if cut is not None:
            self._record.fault = f"cut_connection:{cut.after_bytes}"
        position = start
        while position < end:
            index, offset = divmod(position, content.BLOCK_SIZE)
            data = content.block(seed, key, index)
            view = memoryview(data)
            block_end = min(content.BLOCK_SIZE, offset + (end - position))
            while offset < block_end:
                piece_end = min(block_end, offset + _Throttle.chunk_size(faults.bandwidth))
                throttle.wait(piece_end - offset)
                whole = offset == 0 and piece_end == content.BLOCK_SIZE
                self.wfile.write(data if whole else view[offset:piece_end])
                position += piece_end - offset
                offset = piece_end
                self._record.bytes_sent = position - start
        if cut is not None:
            self._cut(cut.reset)
            return
        self._record.completed = True

    def _cut(self, reset: bool) -> None:
        """Drop the connection mid-body, as a flaky network or an overloaded CDN does."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
