"""The one place boto3 clients are made: endpoint, region, timeouts and retry mode decided once.

Why a factory:
- Lambda reuses a warm container for many invocations, and creating a client costs tens of milliseconds (it loads
  the service model and opens a connection pool); clients are cached per process and reused.
- botocore's *standard* retry mode retries throughput errors (ProvisionedThroughputExceeded, ThrottlingException,
  SlowDown, 5xx) with jittered backoff; the code above it must not add its own blind loop around those, and must
  never retry a ConditionalCheckFailed (that is an answer, not a failure).
- The local runtime and the tests point every client at a moto server through `settings.aws_endpoint_url`; one
  place makes sure no client forgets it.

Clients are thread-safe once created (the downloader's parts-in-flight threads share one), but creating them from a
shared `boto3.Session` is not, hence the lock and a private session instead of boto3's module-level default.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from pipeline.config import Settings

log = logging.getLogger(__name__)

# Attempts include the first call. 5 gives ~4 retries over a few seconds of standard-mode backoff: enough to ride
# out a throttling burst, short enough to leave the rest to SQS redelivery.
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
# A read timeout bounds the wait for the first response byte, not the upload time; S3 can take a while to answer
# CompleteMultipartUpload on a large object, so this is generous.
DEFAULT_READ_TIMEOUT_SECONDS = 60.0
# The downloader uploads several parts in parallel through one S3 client; urllib3's default pool (10) is enough
# for today's settings, this leaves headroom without opening unbounded sockets.
DEFAULT_MAX_POOL_CONNECTIONS = 20


@dataclass(frozen=True)
class _ClientKey:
    service: str
    region: str
    endpoint_url: str | None
    max_attempts: int
    connect_timeout: float
    read_timeout: float
    max_pool_connections: int


_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[_ClientKey, Any] = {}


def client_config(
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
    max_pool_connections: int = DEFAULT_MAX_POOL_CONNECTIONS,
) -> Config:
    """The botocore configuration every pipeline client uses (exposed so tests can build identical clients)."""
    return Config(
        # `total_max_attempts` counts the first call too; botocore's `max_attempts` key counts retries only.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
    )


def make_client(
    service: str,
    settings: Settings,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
    max_pool_connections: int = DEFAULT_MAX_POOL_CONNECTIONS,
) -> Any:
    """A cached boto3 client for `service`, honouring `settings.aws_endpoint_url` and `settings.aws_region`.

    The same arguments return the same client object for the life of the process. Credentials come from the
    default chain (the Lambda role, or the environment in the local stack); nothing here reads a secret.
    """
    key = _ClientKey(
        service=service,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        max_attempts=max_attempts,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
    )
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            global _session
            if _session is None:
                _session = boto3.session.Session()
            client = _session.client(
                service,
                region_name=settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
                config=client_config(
                    max_attempts=max_attempts,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    max_pool_connections=max_pool_connections,
                ),
            )
            _clients[key] = client
            log.debug("created %s client (region %s, endpoint %s)", service, key.region, key.endpoint_url or "AWS")
    return client


def clear_client_cache() -> None:
    """Forget every cached client and the session (tests that change credentials or endpoints call this)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
