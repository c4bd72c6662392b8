"""Typed settings of the pipeline itself, read from the environment in one place (providers read their own).

Why: handlers, the CLI, the local runtime and the CDK stack all need the same names (the CDK sets the variables
listed in `EnvVar`, the handlers read them here). Nothing else in the code calls `os.environ` for configuration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from pipeline import resources
from pipeline.errors import SyncError


class ConfigError(SyncError, ValueError):
    """A setting is missing or malformed; the message names the variable, never its value if it is secret."""


class EnvVar(StrEnum):
    """Names of the environment variables the pipeline reads (and the stack sets); providers name their own."""

    ENVIRONMENT = "SYNC_ENV"
    PROVIDER = "SYNC_PROVIDER"
    AWS_REGION = "AWS_REGION"
    AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
    AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
    TABLE_NAME = "TABLE_NAME"
    BUCKET_NAME = "BUCKET_NAME"
    QUEUE_URL = "QUEUE_URL"
    DLQ_URL = "DLQ_URL"
    TOPIC_ARN = "TOPIC_ARN"
    CREDENTIALS_SECRET_ID = "CREDENTIALS_SECRET_ID"
    METRICS_NAMESPACE = "METRICS_NAMESPACE"
    TRACING_ENABLED = "TRACING_ENABLED"
    LOG_LEVEL = "LOG_LEVEL"
    HTTP_CONNECT_TIMEOUT = "HTTP_CONNECT_TIMEOUT_SECONDS"
    HTTP_READ_TIMEOUT = "HTTP_READ_TIMEOUT_SECONDS"
    RETRY_MAX_ATTEMPTS = "RETRY_MAX_ATTEMPTS"
    RETRY_BASE_DELAY = "RETRY_BASE_DELAY_SECONDS"
    RETRY_MAX_DELAY = "RETRY_MAX_DELAY_SECONDS"
    TOKEN_REFRESH_MARGIN = "TOKEN_REFRESH_MARGIN_SECONDS"
    LIST_PAGE_SIZE = "LIST_PAGE_SIZE"
    INCLUDE_PHOTOS = "INCLUDE_PHOTOS"
    MULTIPART_THRESHOLD = "MULTIPART_THRESHOLD_BYTES"
    PART_SIZE = "PART_SIZE_BYTES"
    TRANSFER_WINDOW = "TRANSFER_WINDOW"
    FULL_RECONCILE_DAYS = "FULL_RECONCILE_DAYS"
    REPORT_QUIET_NIGHTS = "REPORT_QUIET_NIGHTS"
    ALLOWED_DOWNLOAD_HOSTS = "ALLOWED_DOWNLOAD_HOSTS"
    NIGHTLY_BUDGET_BYTES = "NIGHTLY_BUDGET_BYTES"  # override of the measured bytes one night may queue
    LOCAL_MODE = "SYNC_LOCAL_MODE"


_TRUE = {"1", "true", "yes", "on"}
# An allowed download host: a lower-case DNS name or IPv4 address, optionally `*.` for any subdomain.
_HOST_PATTERN = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_FALSE = {"0", "false", "no", "off", ""}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    environment: str = resources.DEFAULT_ENVIRONMENT
    provider: str = resources.DEFAULT_PROVIDER
    aws_region: str = "eu-west-1"
    aws_endpoint_url: str | None = None
    table_name: str = ""
    bucket_name: str = ""
    queue_url: str = ""
    dlq_url: str = ""
    topic_arn: str = ""
    credentials_secret_id: str = ""
    metrics_namespace: str = resources.METRICS_NAMESPACE
    tracing_enabled: bool = False
    log_level: str = "INFO"
    http_connect_timeout: float = 5.0
    http_read_timeout: float = 60.0
    retry_max_attempts: int = 5
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    # The lister refreshes the access token when it expires within this margin (the seed's 24-hour threshold).
    token_refresh_margin_seconds: int = 24 * 3600
    list_page_size: int = 100
    include_photos: bool = False
    # Most nights list only what is newer than the high-water mark kept in the listing cursor (one search call
    # after the credentials check, and two AWS calls when nothing is new); every this many days the whole
    # library is listed again and checked against the table, which catches anything an incremental night missed.
    # 0: every night is a full listing.
    full_reconcile_days: int = 7
    # A night that queues nothing (and fails nothing) sends no report unless this is on: a daily "nothing new"
    # message is noise, and the weekly full reconcile reports anyway (docs/performance.md, "Listing").
    report_quiet_nights: bool = False
    # 8 MiB parts, 8 in flight: measured by bench/transfer_bench.py (bench/README.md): peak RSS 130 MiB for 1 and
    # 4 GiB alike, and twice the throughput of 16 MiB x 4 when a CDN caps each connection (66 vs 35 MiB/s at
    # 10 MB/s per connection). The seed's 100 MB parts would need 800 MB of buffers for the same parallelism.
    multipart_threshold_bytes: int = 16 * MIB
    part_size_bytes: int = 8 * MIB
    transfer_window: int = 8
    # Hosts a download may be fetched from (exact names or `*.example.com`), always over https. Empty: any https
    # host with a dotted name. Either way, a host that resolves to an internal address (private, loopback,
    # link-local...) is refused when the download connects (`pipeline.transfer.safe_connect`). Production should
    # pin the content hosts the run report lists (docs/operations.md, "Pinning the download hosts"), so a URL
    # from a compromised answer or message cannot reach anything else from inside the VPC.
    allowed_download_hosts: tuple[str, ...] = ()
    # The bytes one night may queue (docs/operations.md, "Backfills"). 0: measured from the recent runs' pace
    # (`pipeline.services.backlog.nightly_budget`): a backfill fits what the downloaders finish by next night.
    nightly_budget_bytes: int = 0
    # The local runtime (simulator on 127.0.0.1): plain http is allowed to loopback hosts, and only then.
    local_mode: bool = False
    # The environment these settings were read from; None: the process environment, read when asked. Each provider
    # reads its own settings from it (rclone's backends parse their options from the config they are handed), so
    # nothing here knows a provider's variables. Out of repr and comparisons: it holds secrets.
    env: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        environment = env.get(EnvVar.ENVIRONMENT, resources.DEFAULT_ENVIRONMENT)
        try:
            names = resources.names_for(environment)
        except ValueError as exc:
            raise ConfigError(f"{EnvVar.ENVIRONMENT}: {exc}") from None
        defaults = cls()
        settings = cls(
            environment=environment,
            provider=env.get(EnvVar.PROVIDER, defaults.provider),
            aws_region=env.get(EnvVar.AWS_REGION) or env.get(EnvVar.AWS_DEFAULT_REGION) or defaults.aws_region,
            aws_endpoint_url=env.get(EnvVar.AWS_ENDPOINT_URL) or None,
            table_name=env.get(EnvVar.TABLE_NAME, names.table),
            bucket_name=env.get(EnvVar.BUCKET_NAME, names.local_bucket),
            queue_url=env.get(EnvVar.QUEUE_URL, ""),
            dlq_url=env.get(EnvVar.DLQ_URL, ""),
            topic_arn=env.get(EnvVar.TOPIC_ARN, ""),
            credentials_secret_id=env.get(EnvVar.CREDENTIALS_SECRET_ID, names.credentials_secret),
            metrics_namespace=env.get(EnvVar.METRICS_NAMESPACE, names.metrics_namespace),
            tracing_enabled=_bool(env, EnvVar.TRACING_ENABLED, defaults.tracing_enabled),
            log_level=env.get(EnvVar.LOG_LEVEL, defaults.log_level).upper(),
            http_connect_timeout=_number(env, EnvVar.HTTP_CONNECT_TIMEOUT, defaults.http_connect_timeout, float),
            http_read_timeout=_number(env, EnvVar.HTTP_READ_TIMEOUT, defaults.http_read_timeout, float),
            retry_max_attempts=_number(env, EnvVar.RETRY_MAX_ATTEMPTS, defaults.retry_max_attempts, int),
            retry_base_delay=_number(env, EnvVar.RETRY_BASE_DELAY, defaults.retry_base_delay, float),
            retry_max_delay=_number(env, EnvVar.RETRY_MAX_DELAY, defaults.retry_max_delay, float),
            token_refresh_margin_seconds=_number(
                env, EnvVar.TOKEN_REFRESH_MARGIN, defaults.token_refresh_margin_seconds, int
            ),
            list_page_size=_number(env, EnvVar.LIST_PAGE_SIZE, defaults.list_page_size, int),
            include_photos=_bool(env, EnvVar.INCLUDE_PHOTOS, defaults.include_photos),
            full_reconcile_days=_number(env, EnvVar.FULL_RECONCILE_DAYS, defaults.full_reconcile_days, int),
            report_quiet_nights=_bool(env, EnvVar.REPORT_QUIET_NIGHTS, defaults.report_quiet_nights),
            multipart_threshold_bytes=_number(
                env, EnvVar.MULTIPART_THRESHOLD, defaults.multipart_threshold_bytes, int
            ),
            part_size_bytes=_number(env, EnvVar.PART_SIZE, defaults.part_size_bytes, int),
            transfer_window=_number(env, EnvVar.TRANSFER_WINDOW, defaults.transfer_window, int),
            allowed_download_hosts=_csv(env, EnvVar.ALLOWED_DOWNLOAD_HOSTS),
            nightly_budget_bytes=_number(env, EnvVar.NIGHTLY_BUDGET_BYTES, defaults.nightly_budget_bytes, int),
            local_mode=_bool(env, EnvVar.LOCAL_MODE, defaults.local_mode),
            # A snapshot: what the providers read later is the environment these settings came from.
            env=dict(env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 1 <= self.list_page_size <= 100:
            raise ConfigError(f"{EnvVar.LIST_PAGE_SIZE} must be between 1 and 100")
        if self.retry_max_attempts < 1:
            raise ConfigError(f"{EnvVar.RETRY_MAX_ATTEMPTS} must be at least 1")
        if self.retry_base_delay < 0 or self.retry_max_delay < self.retry_base_delay:
            raise ConfigError(f"{EnvVar.RETRY_MAX_DELAY} must be >= {EnvVar.RETRY_BASE_DELAY} >= 0")
        if self.http_connect_timeout <= 0 or self.http_read_timeout <= 0:
            raise ConfigError("HTTP timeouts must be positive")
        # S3 multipart: every part but the last must be at least 5 MiB.
        if self.part_size_bytes < 5 * MIB:
            raise ConfigError(f"{EnvVar.PART_SIZE} must be at least 5 MiB")
        if not 1 <= self.transfer_window <= 16:
            raise ConfigError(f"{EnvVar.TRANSFER_WINDOW} must be between 1 and 16")
        if self.multipart_threshold_bytes < 1:
            raise ConfigError(f"{EnvVar.MULTIPART_THRESHOLD} must be positive")
        if not 0 <= self.full_reconcile_days <= 366:
            raise ConfigError(f"{EnvVar.FULL_RECONCILE_DAYS} must be between 0 (every night) and 366")
        if self.nightly_budget_bytes < 0:
            raise ConfigError(f"{EnvVar.NIGHTLY_BUDGET_BYTES} must be 0 (measured) or a positive number of bytes")
        for host in self.allowed_download_hosts:
            if not _HOST_PATTERN.fullmatch(host):
                raise ConfigError(
                    f"{EnvVar.ALLOWED_DOWNLOAD_HOSTS}: {host!r} is not a host name or *.domain pattern"
                    " (no scheme, port or path)"
                )

    def environ(self) -> Mapping[str, str]:
        """The variables a provider reads its own settings from."""
        return os.environ if self.env is None else self.env

    def with_env(self, changes: Mapping[str, str | None]) -> Settings:
        """A copy whose environment has some variables set (or, with None, removed): how the local runtime and
        tests give a provider its settings without touching the process environment."""
        updated = {**self.environ(), **changes}
        return replace(self, env={name: value for name, value in updated.items() if value is not None})

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated again (tests and the local runtime use this)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        updated = replace(self, **changes)
        updated.validate()
        return updated


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: Any, kind: type) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    return tuple(part.strip().lower() for part in raw.split(",") if part.strip())
