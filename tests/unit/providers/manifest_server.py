"""A tiny HTTP server on 127.0.0.1 for the http-manifest provider's tests: JSON manifests, media bytes with HEAD
and one-range GETs, statuses to answer first, and a record of every request (method, path, headers)."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class ManifestServer:
    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.first_statuses: dict[str, deque[int]] = defaultdict(deque)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def manifest(self, path: str, document: Any) -> str:
        self.documents[path] = json.dumps(document).encode()
        return self.url(path)

    def media(self, path: str, content: bytes) -> str:
        self.files[path] = content
        return self.url(path)

    def fail_first(self, path: str, *statuses: int) -> None:
        self.first_statuses[path].extend(statuses)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def start(self) -> ManifestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(server: ManifestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes, headers: dict[str, str], *, head: bool = False) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _serve(self, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            with server._lock:
                server.seen.append(Seen(self.command, path, dict(self.headers.items())))
                queued = server.first_statuses.get(path)
                status = queued.popleft() if queued else None
            if status is not None:
                self._answer(status, b"{}", {"Content-Type": "application/json"}, head=head)
            elif path in server.documents:
                self._answer(200, server.documents[path], {"Content-Type": "application/json"}, head=head)
            elif path in server.files:
                self._file(server.files[path], head)
            else:
                self._answer(404, b"not found", {"Content-Type": "text/plain"}, head=head)

        def _file(self, content: bytes, head: bool) -> None:
            headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "ETag": '"v1"'}
            wanted = _RANGE.match(self.headers.get("Range", ""))
            if head or not wanted:
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if not head:
                    self.wfile.write(content)
                return
            start = int(wanted.group(1))
            stop = min(int(wanted.group(2)) if wanted.group(2) else len(content) - 1, len(content) - 1)
            headers["Content-Range"] = f"bytes {start}-{stop}/{len(content)}"
            self._answer(206, content[start : stop + 1], headers)

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_HEAD(self) -> None:
            self._serve(head=True)

    return Handler
