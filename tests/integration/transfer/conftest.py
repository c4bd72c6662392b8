"""A small range-capable content server on 127.0.0.1 with injectable faults, for the transfer engine's tests.

Why not the GoPro simulator: the engine is provider-agnostic and its tests need byte-level faults (a body cut
after N bytes, a server that ignores Range, fewer bytes than announced) that a provider simulator has no reason
to offer. The server is deliberately minimal: deterministic bytes, HEAD, GET with one `bytes=a-b` / `bytes=a-`
range, an ETag, keep-alive, and the faults in `Faults`.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

MIB = 1024 * 1024
_BLOCK = 1024 * 1024 + 7  # an odd period, so no two parts of a file hold the same bytes


def make_content(size: int, seed: int = 0) -> bytes:
    block = random.Random(seed).randbytes(_BLOCK)
    return (block * (size // _BLOCK + 1))[:size]


@dataclass
class Faults:
    cut_after: int = 0  # with `cuts`: body bytes sent before the connection is dropped
    cuts: int = 0  # how many GET responses to cut
    statuses: list[int] = field(default_factory=list)  # answered, in order, to the next GETs
    fail_after_gets: int | None = None  # every GET after this many answers `fail_status`
    fail_status: int = 500
    expired_tokens: set[str] = field(default_factory=set)  # ?token= values answered 403
    ignore_range: bool = False  # answer 200 with the whole body to ranged GETs
    served_size: int | None = None  # bytes really sent; headers still announce the full size
    no_length: bool = False  # HEAD without Content-Length, GET bodies chunked
    redirect_to: str | None = None
    head_length: int | None = None  # a wrong Content-Length announced by HEAD
    etag_after_gets: int | None = None  # the object "changes" (new ETag) after this many GETs


@dataclass
class Counters:
    heads: int = 0
    gets: int = 0
    ranges: list[str] = field(default_factory=list)
    cut: int = 0
    refused: int = 0
    connections: int = 0


class ContentServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.content = b""
        self.etag = '"0"'
        self.faults = Faults()
        self.counters = Counters()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, token: str = "t0", path: str = "/media/GX010042.MP4") -> str:
        return f"{self.base}{path}?token={token}&X-Amz-Signature=secret"

    def serve(self, size: int, seed: int = 0) -> bytes:
        """Serve `size` deterministic bytes from now on, with fresh faults and counters; returns them."""
        with self.lock:
            self.content = make_content(size, seed)
            self.etag = f'"{hashlib.md5(self.content, usedforsecurity=False).hexdigest()}"'
            self.faults = Faults()
            self.counters = Counters()
        return self.content


def _handler_for(state: ContentServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with state.lock:
                state.counters.connections += 1

        def log_message(self, format: str, *args: object) -> None:
            return

        def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _refuse(self) -> bool:
            """Faults that replace the whole answer; True if one was sent."""
            faults = state.faults
            token = parse_qs(urlsplit(self.path).query).get("token", [""])[0]
            if token in faults.expired_tokens:
                self._empty(403)
            elif faults.redirect_to:
                self._empty(302, {"Location": faults.redirect_to})
            elif self.command == "GET" and faults.statuses:
                self._empty(faults.statuses.pop(0))
            elif (
                self.command == "GET"
                and faults.fail_after_gets is not None
                and state.counters.gets > faults.fail_after_gets
            ):
                self._empty(faults.fail_status)
            else:
                return False
            state.counters.refused += 1
            return True

        def do_HEAD(self) -> None:
            with state.lock:
                state.counters.heads += 1
                if self._refuse():
                    return
                no_length = state.faults.no_length
            self.send_response(200)
            if not no_length:
                length = state.faults.head_length
                self.send_header("Content-Length", str(len(state.content) if length is None else length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", state.etag)
            self.end_headers()

        def do_GET(self) -> None:
            with state.lock:
                state.counters.gets += 1
                if self._refuse():
                    return
                faults = state.faults
                size = len(state.content)
                range_header = self.headers.get("Range")
                if range_header:
                    state.counters.ranges.append(range_header)
                cut = None
                if faults.cuts > 0:
                    faults.cuts -= 1
                    state.counters.cut += 1
                    cut = faults.cut_after
                served = size if faults.served_size is None else faults.served_size
                ignore_range = faults.ignore_range
                chunked = faults.no_length
                changed = faults.etag_after_gets is not None and state.counters.gets > faults.etag_after_gets
                etag = '"changed"' if changed else state.etag
            start, end, status = 0, size - 1, 200
            if range_header and not ignore_range and range_header.startswith("bytes="):
                first, _, last = range_header[6:].partition("-")
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
                if start >= size:
                    self._empty(416, {"Content-Range": f"bytes */{size}"})
                    return
                status = 206
            body = memoryview(state.content)[start : min(end + 1, served)]
            if cut is not None:
                body = body[:cut]
            self.send_response(status)
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            try:
                for offset in range(0, len(body), MIB):
                    piece = body[offset : offset + MIB]
                    if chunked:
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + bytes(piece) + b"\r\n")
                    else:
                        self.wfile.write(piece)
                if len(body) < end - start + 1:  # cut or short: drop the connection mid-body
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


@pytest.fixture(scope="session")
def _content_server_instance() -> Iterator[ContentServer]:
    server = ContentServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def content_server(_content_server_instance: ContentServer) -> ContentServer:
    """The session's content server, reset to an empty file with no faults."""
    _content_server_instance.serve(0)
    return _content_server_instance
