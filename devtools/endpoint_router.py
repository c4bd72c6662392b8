"""One loopback AWS endpoint in front of two emulators: each request goes to the emulator of its service.

Why: the pipeline, the local runtime and the scripts take ONE endpoint URL (`AWS_ENDPOINT_URL`, `--endpoint-url`)
and hand it to every boto3 client, which is right for AWS and for moto alone. But the emulator tests want S3 and
SQS on LocalStack (which checks checksums and has StartMessageMoveTask) while DynamoDB stays on moto (LocalStack's
DynamoDB downloads Java at run time, which fails offline). This router is that one endpoint: it reads the
service name from the request's SigV4 credential scope (`Credential=<key>/<date>/<region>/<service>/aws4_request`)
and forwards the request, bytes untouched, to the upstream given for that service, or to the default one.

Deliberately small: one request at a time per connection, bodies buffered whole (test-sized objects only), no
TLS. Not for benchmarks: it adds a copy of every byte.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# Headers that describe one hop, not the message (RFC 9110 7.6.1); the router frames its own answers.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
_TIMEOUT_S = 120.0


def service_of(headers: Mapping[str, str]) -> str | None:
    """The AWS service a signed request is for (`s3`, `sqs`, `dynamodb`, ...), from its Authorization header."""
    match = _SCOPE.search(headers.get("Authorization", ""))
    return match.group(1) if match else None


class EndpointRouter:
    """`routes` maps a service name to an upstream base URL (http://host:port); `default` takes the rest."""

    def __init__(self, default: str, routes: Mapping[str, str] | None = None) -> None:
        self.default = default
        self.routes = dict(routes or {})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="endpoint-router", daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def upstream_for(self, service: str | None) -> str:
        return self.routes.get(service or "", self.default)

    def start(self) -> EndpointRouter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def routing(default: str, routes: Mapping[str, str] | None = None) -> Iterator[EndpointRouter]:
    router = EndpointRouter(default, routes).start()
    try:
        yield router
    finally:
        router.stop()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        pieces = []
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
            pieces.append(handler.rfile.read(size))
            handler.rfile.readline()
        while handler.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(pieces)
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _handler_for(router: EndpointRouter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _forward(self) -> None:
            body = _read_body(self)
            upstream = urlsplit(router.upstream_for(service_of(self.headers)))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or self.command in ("POST", "PUT"):
                headers["Content-Length"] = str(len(body))
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=_TIMEOUT_S)
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                length = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

    return Handler
