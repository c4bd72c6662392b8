"""The download policy that resolves: single-label names, and the connect-time check of resolved addresses.

The resolver is ours (`socket.getaddrinfo` patched), never real DNS; the servers are loopback HTTP servers, and
no test connects anywhere else (a "public" address is never dialled: either it is refused first, or the connect
is patched to land on a loopback server and say so).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import urllib3.util.connection

from pipeline.config import EnvVar, Settings
from pipeline.transfer.archive import S3FileTransfer
from pipeline.transfer.errors import SourceError
from pipeline.transfer.safe_connect import AddressGuard, UnsafeAddress, is_internal_address
from pipeline.transfer.source import make_session
from pipeline.transfer.url_policy import DownloadPolicy, content_host

PUBLIC = "93.184.216.34"  # a global address; never connected to by these tests
_REAL_GETADDRINFO = socket.getaddrinfo


class _Counting(ThreadingHTTPServer):
    hits: int = 0


@pytest.fixture
def server() -> Iterator[_Counting]:
    """A loopback HTTP server that counts every request: what an internal service would see."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.server.hits += 1  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    httpd = _Counting(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """`resolver({"name": ["addr", ...] or callable})` answers those names itself; returns the lookup log."""
    lookups: list[str] = []

    def install(answers: dict[str, Any]) -> list[str]:
        def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, *args: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name not in answers:
                return _REAL_GETADDRINFO(host, port, family, type, *args)
            lookups.append(name)
            found = answers[name]
            addresses = found() if callable(found) else found
            result = []
            for address in addresses:
                ip = ipaddress.ip_address(address)
                af = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
                sa = (address, int(port), 0, 0) if ip.version == 6 else (address, int(port))
                result.append((af, socket.SOCK_STREAM, 6, "", sa))
            return result

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install


def _get(session: requests.Session, url: str) -> requests.Response:
    return session.get(url, timeout=(2, 2), allow_redirects=False)


# --- addresses -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # the instance metadata service
        ("100.64.0.1", True),  # shared address space (carrier NAT)
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("fd00:ec2::254", True),  # the IPv6 metadata endpoint
        ("::ffff:169.254.169.254", True),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
        (PUBLIC, False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
        ("64:ff9b::5db8:d822", False),  # NAT64 of a public address
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert is_internal_address(ipaddress.ip_address(address)) is internal


def test_a_host_with_any_internal_address_is_refused() -> None:
    guard = AddressGuard()
    guard.vet("cdn.example.com", [ipaddress.ip_address(PUBLIC)])
    with pytest.raises(UnsafeAddress, match=r"internal address \(10\.0\.0\.7\)"):
        guard.vet("cdn.example.com", [ipaddress.ip_address(PUBLIC), ipaddress.ip_address("10.0.0.7")])
    with pytest.raises(UnsafeAddress, match="no address"):
        guard.vet("cdn.example.com", [])


def test_local_mode_allows_loopback_only_for_a_loopback_name() -> None:
    loopback = [ipaddress.ip_address("127.0.0.1")]
    AddressGuard(local_mode=True).vet("localhost", loopback)
    AddressGuard(local_mode=True).vet("127.0.0.1", loopback)
    with pytest.raises(UnsafeAddress):
        AddressGuard(local_mode=True).vet("169.254.169.254.nip.io", loopback)
    with pytest.raises(UnsafeAddress):
        AddressGuard(local_mode=True).vet("localhost", [ipaddress.ip_address("10.0.0.1")])
    with pytest.raises(UnsafeAddress):
        AddressGuard().vet("localhost", loopback)


# --- single-label names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("local_mode", [False, True])
@pytest.mark.parametrize(
    "url",
    ["https://metadata/latest/", "https://metadata./latest/", "https://intranet:8443/x", "https://134744072/x"],
)
def test_single_label_hosts_are_refused(url: str, local_mode: bool) -> None:
    reason = DownloadPolicy(local_mode=local_mode).refusal(url)
    assert reason is not None
    assert "single-label" in reason
    assert DownloadPolicy(allowed_hosts=("metadata", "intranet"), local_mode=local_mode).refusal(url) is not None


def test_loopback_names_and_dotted_hosts_are_not_single_label() -> None:
    assert DownloadPolicy(local_mode=True).refusal("http://localhost:8080/x") is None
    assert DownloadPolicy().refusal("https://a.example.com/x") is None
    assert DownloadPolicy().refusal("https://[2606:2800:220:1:248:1893:25c8:1946]/x") is None


def test_content_host_names_the_host_only() -> None:
    assert content_host("https://Media.GoPro-CDN.example./GX01.MP4?X-Amz-Signature=s") == "media.gopro-cdn.example"
    assert content_host("https://m\u0435dia.example/x") is None
    assert content_host("not a url") is None
    assert content_host(None) is None


# --- the guarded session -----------------------------------------------------------------------------------------


def test_the_simulators_loopback_stays_reachable_in_local_mode(server: _Counting) -> None:
    session = make_session(2, guard=AddressGuard(local_mode=True))
    assert _get(session, f"http://127.0.0.1:{server.server_port}/x").content == b"ok"
    assert _get(session, f"http://localhost:{server.server_port}/x").content == b"ok"
    assert server.hits == 2


def test_loopback_is_refused_outside_local_mode(server: _Counting) -> None:
    session = make_session(2, guard=AddressGuard())
    with pytest.raises(UnsafeAddress, match="internal address"):
        _get(session, f"http://127.0.0.1:{server.server_port}/x")
    assert server.hits == 0


@pytest.mark.parametrize("local_mode", [False, True])
@pytest.mark.parametrize(
    "answers",
    [["127.0.0.1"], ["127.0.0.1", PUBLIC]],
    ids=["resolves-internal", "resolves-internal-and-public"],
)
def test_a_name_that_resolves_to_an_internal_address_is_never_connected(
    server: _Counting, resolver: Any, answers: list[str], local_mode: bool
) -> None:
    lookups = resolver({"169.254.169.254.nip.io": answers})
    session = make_session(2, guard=AddressGuard(local_mode=local_mode))
    with pytest.raises(UnsafeAddress, match=r"internal address \(127\.0\.0\.1\)"):
        _get(session, f"http://169.254.169.254.nip.io:{server.server_port}/latest/meta-data/")
    assert server.hits == 0
    assert lookups == ["169.254.169.254.nip.io"]


def test_a_public_answer_before_an_internal_one_is_refused_before_any_connect(
    resolver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver({"cdn.example.com": [PUBLIC, "10.0.0.7"]})
    dialled: list[Any] = []
    monkeypatch.setattr(urllib3.util.connection, "create_connection", lambda addr, *a, **k: dialled.append(addr))
    with pytest.raises(UnsafeAddress, match=r"10\.0\.0\.7"):
        _get(make_session(2, guard=AddressGuard()), "https://cdn.example.com/x")
    assert dialled == []


def test_one_lookup_per_connection_and_only_its_addresses_are_dialled(
    resolver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a second lookup would answer 127.0.0.1; the guard never makes one for the same connection."""
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    lookups = resolver({"cdn.example.com": lambda: next(answers)})
    dialled: list[Any] = []

    def unreachable(address: Any, *args: Any, **kwargs: Any) -> Any:
        dialled.append(address)
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", unreachable)
    with pytest.raises(requests.ConnectionError):
        _get(make_session(2, guard=AddressGuard()), "https://cdn.example.com/x")
    assert lookups == ["cdn.example.com"]
    assert dialled == [(PUBLIC, 443)]


def test_the_connected_peer_is_checked_too(
    server: _Counting, resolver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connect that lands elsewhere than the vetted address (a hijacked route, a transparent proxy): refused."""
    resolver({"cdn.example.com": [PUBLIC]})
    real = urllib3.util.connection.create_connection

    def lands_on_loopback(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        return real(("127.0.0.1", server.server_port), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", lands_on_loopback)
    with pytest.raises(UnsafeAddress, match=r"connected to 127\.0\.0\.1"):
        _get(make_session(2, guard=AddressGuard()), f"http://cdn.example.com:{server.server_port}/x")
    assert server.hits == 0


def test_a_proxy_cannot_bypass_the_guard() -> None:
    session = make_session(2, guard=AddressGuard())
    with pytest.raises(SourceError, match="proxy"):
        session.get("https://cdn.example.com/x", proxies={"https": "http://10.0.0.1:3128"}, timeout=1)


@pytest.mark.parametrize("pinned", ["", "*.nip.io"])
@pytest.mark.parametrize("local_mode", [False, True])
def test_the_downloaders_seam_is_built_with_the_guard(
    server: _Counting, resolver: Any, local_mode: bool, pinned: str
) -> None:
    """What production runs: `S3FileTransfer.from_settings` refuses the name, with or without a pinned list
    that names it."""
    resolver({"169.254.169.254.nip.io": ["127.0.0.1"]})
    env = {EnvVar.LOCAL_MODE: "true" if local_mode else "false", EnvVar.ALLOWED_DOWNLOAD_HOSTS: pinned}
    settings = Settings.from_env(env)
    assert settings.local_mode is local_mode
    assert settings.allowed_download_hosts == ((pinned,) if pinned else ())
    seam = S3FileTransfer.from_settings(settings, s3=None)
    url = f"https://169.254.169.254.nip.io:{server.server_port}/latest/meta-data/"
    assert seam.policy.refusal(url) is None  # the name alone passes the policy...
    with pytest.raises(UnsafeAddress):  # ...the connection does not
        _get(seam._engine.session, url)
    assert server.hits == 0


# --- TLS through the guarded socket ------------------------------------------------------------------------------


def _self_signed(tmp_path: Any, name: str) -> tuple[str, str]:
    """(cert, key) PEM paths of a self-signed certificate for DNS name `name`."""
    x509 = pytest.importorskip("cryptography.x509")
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.mark.parametrize(("cert_name", "ok"), [("localhost", True), ("other.example", False)])
def test_tls_keeps_the_host_name_for_sni_and_verification(
    server: _Counting, tmp_path: Any, cert_name: str, ok: bool
) -> None:
    """Only the socket is the guard's: the handshake still sends the URL's name (SNI) and verifies the
    certificate against it."""
    import ssl

    cert, key = _self_signed(tmp_path, cert_name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen_sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    session = make_session(2, guard=AddressGuard(local_mode=True))
    url = f"https://localhost:{server.server_port}/x"
    if ok:
        assert session.get(url, timeout=(2, 2), verify=cert).content == b"ok"
    else:
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url, timeout=(2, 2), verify=cert)
    assert seen_sni[:1] == ["localhost"]
