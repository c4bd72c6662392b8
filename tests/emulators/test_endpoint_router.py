"""devtools/endpoint_router.py: each signed request reaches the upstream of its service, bytes untouched."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from devtools.endpoint_router import EndpointRouter, routing, service_of

pytestmark = pytest.mark.integration


def signed_by(service: str) -> dict[str, str]:
    return {
        "Authorization": "AWS4-HMAC-SHA256 "
        f"Credential=testing/20261201/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=abc"
    }


class Echo(BaseHTTPRequestHandler):
    """Answers with who it is and what it received."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps(
            {
                "upstream": self.server.name,  # type: ignore[attr-defined]
                "method": self.command,
                "path": self.path,
                "sha256": hashlib.sha256(body).hexdigest(),
                "length": len(body),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Echo", "yes")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_HEAD = _answer


def echo_server(name: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.name = name  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def router() -> Iterator[EndpointRouter]:
    servers = {name: echo_server(name) for name in ("localstack", "moto")}
    url = {name: f"http://127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    with routing(url["localstack"], {"dynamodb": url["moto"]}) as made:
        yield made
    for server in servers.values():
        server.shutdown()
        server.server_close()


def test_the_service_comes_from_the_sigv4_credential_scope():
    assert service_of(signed_by("dynamodb")) == "dynamodb"
    assert service_of(signed_by("s3")) == "s3"
    assert service_of({}) is None


def test_requests_reach_their_service_upstream_with_their_bytes(router: EndpointRouter):
    body = bytes(range(256)) * 4096 + b"tail"

    dynamodb = requests.post(router.endpoint_url + "/", data=b"{}", headers=signed_by("dynamodb"), timeout=10)
    part = "/bucket/key?partNumber=1"
    s3 = requests.put(router.endpoint_url + part, data=body, headers=signed_by("s3"), timeout=10)
    unsigned = requests.get(router.endpoint_url + "/_localstack/health", timeout=10)

    assert dynamodb.json()["upstream"] == "moto"
    answer = s3.json()
    assert (answer["upstream"], answer["method"], answer["path"]) == ("localstack", "PUT", part)
    assert (answer["sha256"], answer["length"]) == (hashlib.sha256(body).hexdigest(), len(body))
    assert unsigned.json()["upstream"] == "localstack"
    assert s3.headers["X-Echo"] == "yes"


def test_a_chunked_request_body_is_forwarded_whole(router: EndpointRouter):
    pieces = [b"a" * 1000, b"b" * 5, b"c" * 70000]

    answer = requests.put(
        router.endpoint_url + "/bucket/key", data=iter(pieces), headers=signed_by("s3"), timeout=10
    ).json()

    assert answer["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_head_keeps_the_upstream_length_and_sends_no_body(router: EndpointRouter):
    answer = requests.head(router.endpoint_url + "/bucket/key", headers=signed_by("s3"), timeout=10)

    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) > 0
    assert answer.content == b""
