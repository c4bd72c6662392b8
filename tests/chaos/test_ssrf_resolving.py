"""Download hosts that resolve to internal addresses (issue 12, point 4), over the real stack.

The provider's answer for one video is replaced by a link whose host NAME passes every literal check, but whose
addresses are internal: `169.254.169.254.nip.io`-style names, a single-label name (resolved through the VPC's
search domains), a name with both a public and a private address. The resolver is ours (`socket.getaddrinfo`
patched for those names only, never real DNS); the "internal service" is a TCP listener on 127.0.0.1 that counts
every connection made to it. What must hold: that video fails alone, with the reason, and not one connection
reaches the internal service; every other video is archived.

Each scenario has its proof beside it: the same night on a pipeline without the fix (the download session
without its connect-time check, or the policy without its single-label rule) reaches the internal service or
hands the name to the resolver, so the scenario's assertions would fail there.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.gopro_simulator import MIB
from pipeline.providers.base import DownloadSource
from pipeline.transfer import archive, source, url_policy
from tests.chaos.library import library, media_id, video

pytestmark = pytest.mark.integration

PUBLIC = "93.184.216.34"  # a global address; never dialled (refused first, or listed after the internal one)
_REAL_GETADDRINFO = socket.getaddrinfo
FAMILY = "hostile input"


class _InternalService:
    """A TCP listener on 127.0.0.1 standing in for the metadata service: counts connections, answers nothing."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


@pytest.fixture
def internal() -> Iterator[_InternalService]:
    service = _InternalService()
    yield service
    service.close()


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], list[str]]:
    """`resolver({"name": ["addr", ...]})`: those names answered by us, every other by the system; returns the
    log of the names we were asked for."""
    lookups: list[str] = []

    def install(answers: dict[str, list[str]]) -> list[str]:
        def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, *args: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name not in answers:
                return _REAL_GETADDRINFO(host, port, family, type, *args)
            lookups.append(name)
            result = []
            for address in answers[name]:
                v6 = ipaddress.ip_address(address).version == 6
                sa = (address, int(port), 0, 0) if v6 else (address, int(port))
                result.append((socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM, 6, "", sa))
            return result

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install


def _night_with_hijacked_link(chaos: Any, monkeypatch: pytest.MonkeyPatch, url: str, *, name: str) -> Any:
    """A night of two videos where the provider's link for video 1 is `url`; returns (run, result)."""
    run = chaos(library(video(1, 6 * MIB), video(2, 600 * 1024)), name=name, family=FAMILY)
    provider = run.app.provider()
    resolve = provider.resolve_download
    victim = media_id(1)

    def hijacked(media_id_: str, **kwargs: Any) -> Any:
        plan = resolve(media_id_, **kwargs)
        if media_id_ != victim:
            return plan
        evil = DownloadSource(url=url, filename="GX010001.MP4", content_type="video/mp4")
        return type(plan)(media_id=plan.media_id, filename=plan.filename, files=(evil,))

    monkeypatch.setattr(provider, "resolve_download", hijacked)
    return run, run.night()


def _without_the_connect_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline before the fix: the downloader's session connects wherever the name resolves."""
    monkeypatch.setattr(archive, "make_session", lambda pool_size, guard=None: source.make_session(pool_size))


def _assert_failed_alone(run: Any, result: Any, reason: str) -> None:
    outcome = run.verify()
    assert (outcome.completed, outcome.failed) == (1, 1)
    record = run.app.state.media.get("gopro", media_id(1))
    assert reason in (record.last_error or ""), record.last_error
    assert result.dlq_depth == 1


# --- a dotted name whose address is internal ---------------------------------------------------------------------


def test_a_name_resolving_to_an_internal_address_fails_that_video_alone(
    chaos: Any, monkeypatch: pytest.MonkeyPatch, resolver: Any, internal: _InternalService
) -> None:
    lookups = resolver({"169.254.169.254.nip.io": ["127.0.0.1"]})
    url = f"https://169.254.169.254.nip.io:{internal.port}/latest/meta-data/iam/security-credentials/"
    run, result = _night_with_hijacked_link(chaos, monkeypatch, url, name="download host resolving to internal")
    _assert_failed_alone(run, result, "internal address (127.0.0.1)")
    assert internal.connections == 0
    assert "169.254.169.254.nip.io" in lookups  # it was resolved, and refused by what it resolved to
    # The report names every host the night's links pointed to, the refused one included.
    assert "169.254.169.254.nip.io" in result.report["content_hosts"]
    assert run.sim.content_host in result.report["content_hosts"]
    assert "download hosts:" in result.report_text


def test_proof_without_the_connect_check_the_internal_service_is_reached(
    chaos: Any, monkeypatch: pytest.MonkeyPatch, resolver: Any, internal: _InternalService
) -> None:
    _without_the_connect_check(monkeypatch)
    resolver({"169.254.169.254.nip.io": ["127.0.0.1"]})
    url = f"https://169.254.169.254.nip.io:{internal.port}/latest/meta-data/iam/security-credentials/"
    run, _ = _night_with_hijacked_link(chaos, monkeypatch, url, name="proof: no connect-time check")
    run.proof = True
    assert internal.connections > 0


# --- a name with a public and a private address ------------------------------------------------------------------


def test_a_name_resolving_to_a_public_and_a_private_address_is_refused(
    chaos: Any, monkeypatch: pytest.MonkeyPatch, resolver: Any, internal: _InternalService
) -> None:
    resolver({"media-dual.gopro-cdn.example": ["127.0.0.1", PUBLIC]})
    url = f"https://media-dual.gopro-cdn.example:{internal.port}/GX010001.MP4"
    run, result = _night_with_hijacked_link(chaos, monkeypatch, url, name="download host: public + private")
    _assert_failed_alone(run, result, "internal address (127.0.0.1)")
    assert internal.connections == 0


def test_proof_without_the_connect_check_the_private_address_is_reached(
    chaos: Any, monkeypatch: pytest.MonkeyPatch, resolver: Any, internal: _InternalService
) -> None:
    _without_the_connect_check(monkeypatch)
    resolver({"media-dual.gopro-cdn.example": ["127.0.0.1", PUBLIC]})
    url = f"https://media-dual.gopro-cdn.example:{internal.port}/GX010001.MP4"
    run, _ = _night_with_hijacked_link(chaos, monkeypatch, url, name="proof: no connect-time check (dual)")
    run.proof = True
    assert internal.connections > 0


# --- single-label names ------------------------------------------------------------------------------------------


def test_a_single_label_host_is_refused_before_it_is_resolved(
    chaos: Any, monkeypatch: pytest.MonkeyPatch, resolver: Any, internal: _InternalService
) -> None:
    lookups = resolver({"metadata": ["127.0.0.1"], "metadata.ec2.internal": ["127.0.0.1"]})
    url = f"https://metadata:{internal.port}/latest/meta-data/"
    run, result = _night_with_hijacked_link(chaos, monkeypatch, url, name="single-label download host")
    _assert_failed_alone(run, result, "single-label")
    assert lookups == []  # never handed to the resolver (nor its search domains)
    assert internal.connections == 0


def test_proof_without_the_single_label_rule_the_name_reaches_the_resolver(
    chaos: Any, monkeypatch: pytest.MonkeyPatch, resolver: Any, internal: _InternalService
) -> None:
    monkeypatch.setattr(url_policy, "_single_label", lambda host: False)
    lookups = resolver({"metadata": ["127.0.0.1"]})
    url = f"https://metadata:{internal.port}/latest/meta-data/"
    run, _ = _night_with_hijacked_link(chaos, monkeypatch, url, name="proof: no single-label rule")
    run.proof = True
    assert "metadata" in lookups
