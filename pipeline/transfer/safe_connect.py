"""The download session's connect-time check: a host name is vetted by the addresses it resolves to.

Why at connect time: `url_policy` refuses internal IP literals in a URL, but `169.254.169.254.nip.io`, a
single-label name or any name an adversary controls can resolve to the instance metadata endpoint or a VPC
address. Only the connection knows where it really goes, so the check sits in the urllib3 connection classes the
download session (`source.make_session`) uses.

How, and why this way rather than checking `sock.getpeername()` after urllib3's own connect:
- the host is resolved ONCE (`socket.getaddrinfo`), and the host is refused if ANY of its addresses is loopback,
  private, link-local, shared, reserved, multicast or otherwise not global (IPv4-mapped and NAT64 forms are
  judged by the IPv4 address they carry). A peer check alone would accept a name resolving to both a public and
  a private address whenever the public one answers first, and any "look up, then let urllib3 look up again"
  check is open to DNS rebinding (a second answer that differs);
- the socket is then connected to exactly those vetted addresses, and `getpeername()` is vetted again once
  connected (it must be one of them): the check is held against the address actually connected to;
- only the socket is ours: urllib3 still knows the URL's host name, so the Host header, TLS SNI and certificate
  verification are exactly what they would be otherwise.
Local mode (the simulator) may connect to loopback, and only for a loopback host name (`localhost`, `127.0.0.1`,
`::1`, `*.localhost`): a public-looking name that resolves to loopback is refused there too.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from pipeline.transfer.errors import SourceError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeAddress(SourceError):
    """A download host that resolves to (or connected to) an internal address; permanent: the same name would
    resolve the same way on the next receive. Not an OSError, so urllib3 and requests pass it through as is."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"refusing to connect to {host}: {reason}", transient=False)
        self.host = host
        self.reason = reason


def is_internal_address(address: Address) -> bool:
    """True for any address a download must not reach: not global (loopback, private, link-local, shared,
    documentation, reserved, unspecified) or multicast, judging IPv4-mapped and NAT64 addresses by their IPv4."""
    if isinstance(address, ipaddress.IPv6Address):  # explicit: what the stdlib says of these varies by version
        if address.ipv4_mapped is not None:
            return is_internal_address(address.ipv4_mapped)
        if address in _NAT64:
            return is_internal_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return not address.is_global or address.is_multicast


def is_loopback_name(host: str) -> bool:
    """The names local mode may connect to loopback with (the simulator's own)."""
    host = host.lower().strip("[]").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _address(text: str) -> Address:
    return ipaddress.ip_address(text.split("%", 1)[0])  # a scoped IPv6 address keeps its scope after `%`


@dataclass(frozen=True)
class AddressGuard:
    """Which addresses a download may connect to: global ones; loopback too in local mode for a loopback name."""

    local_mode: bool = False

    def refusal(self, host: str, address: Address) -> str | None:
        """Why `host` may not be reached at `address`, or None."""
        if self.local_mode and address.is_loopback and is_loopback_name(host):
            return None
        if is_internal_address(address):
            return f"it resolves to an internal address ({address})"
        return None

    def vet(self, host: str, addresses: Sequence[Address]) -> None:
        """UnsafeAddress unless every one of `addresses` may be reached (and there is at least one)."""
        if not addresses:
            raise UnsafeAddress(host, "it resolves to no address")
        for address in addresses:
            reason = self.refusal(host, address)
            if reason is not None:
                raise UnsafeAddress(host, reason)

    def connect(
        self,
        host: str,
        port: int,
        timeout: float | object | None,
        *,
        source_address: tuple[str, int] | None = None,
        socket_options: object = None,
    ) -> socket.socket:
        """A socket connected to `host`:`port` through one resolution whose addresses were all vetted."""
        family = urllib3_connection.allowed_gai_family()
        answers = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        addresses = [_address(str(sa[0])) for _af, _type, _proto, _name, sa in answers]
        self.vet(host, addresses)
        error: OSError | None = None
        for (_af, _type, _proto, _name, sa), address in zip(answers, addresses, strict=True):
            try:
                # A numeric address: urllib3's helper adds socket options, timeout and binding, and its
                # getaddrinfo on a literal is no second DNS lookup.
                sock = urllib3_connection.create_connection(
                    (str(address), sa[1]),
                    timeout,  # type: ignore[arg-type]
                    source_address=source_address,
                    socket_options=socket_options,  # type: ignore[arg-type]
                )
            except OSError as exc:
                error = exc
                continue
            try:
                self._check_peer(host, sock, addresses)
            except BaseException:
                sock.close()
                raise
            return sock
        raise error or OSError(f"could not connect to {host}")

    def _check_peer(self, host: str, sock: socket.socket, vetted: Sequence[Address]) -> None:
        peer = _address(str(sock.getpeername()[0]))
        if peer not in vetted:
            raise UnsafeAddress(host, f"connected to {peer}, not an address it resolved to")
        reason = self.refusal(host, peer)
        if reason is not None:
            raise UnsafeAddress(host, reason.replace("it resolves to", "connected to"))


class _GuardedConnectionMixin:
    """`_new_conn` of urllib3's connections, with the socket made by the `guard` (see the module docstring)."""

    guard: AddressGuard
    host: str
    port: int
    timeout: float | None
    source_address: tuple[str, int] | None
    socket_options: object

    def _new_conn(self) -> socket.socket:
        dns_host = self.host.strip("[]").rstrip(".")
        try:
            sock = self.guard.connect(
                dns_host,
                self.port,
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc  # type: ignore[arg-type]
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


def guarded_pool_classes(guard: AddressGuard) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes (by scheme) whose connections are made through `guard`; for a PoolManager's
    `pool_classes_by_scheme`."""

    class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
        pass

    class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
        pass

    GuardedHTTPConnection.guard = guard
    GuardedHTTPSConnection.guard = guard

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections are made through `guard` (the download session, `source.make_session`)."""

    def __init__(self, guard: AddressGuard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = guarded_pool_classes(self.guard)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through a proxy the guard would vet the proxy, not the download host: refuse rather than pretend.
        raise SourceError("a proxy on the download session would bypass the connect-time address check")
