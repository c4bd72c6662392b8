"""Per-environment settings of the stack, in one place.

Why one module: what differs between dev, staging and prod (VPC, schedule, retention, alert address, deletion
protection) is a handful of values; keeping them side by side makes the differences reviewable at a glance.
Values shared with the runtime (timeouts, queue parameters, names) come from `pipeline.resources` and are never
repeated here.

Select the environment with `-c env=dev|staging|prod`. A few values can be overridden from the CDK context so a
user's deploy workflow needs no code change: `alert_email`, `vpc` (true/false), `schedule` (true/false).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from aws_cdk import aws_logs

from pipeline import resources

STACK_NAME_PREFIX = "GoProSync"
RESOURCE_PREFIX = "gopro-sync"

# Lifecycle of archived media (issue 4): Standard -> Glacier Instant Retrieval -> Deep Archive.
GLACIER_IR_AFTER_DAYS = 7
DEEP_ARCHIVE_AFTER_DAYS = 14
# Glacier IR bills at least 128 KiB per object; smaller objects (thumbnails, sidecars) stay in Standard.
LIFECYCLE_MIN_OBJECT_BYTES = 128 * 1024
# Multipart uploads resume across retries within one night; a week is far beyond any resume window.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7

# Alarm thresholds from the seed plan ("> N in 5 minutes"), see docs/infrastructure.md.
ALARM_PERIOD_MINUTES = 5
FAILED_VIDEOS_THRESHOLD = 3
AUTH_FAILURES_THRESHOLD = 1
LAMBDA_ERRORS_THRESHOLD = 5
LAMBDA_THROTTLES_THRESHOLD = 1
LOW_THROUGHPUT_MBPS = 20
LOW_THROUGHPUT_MINUTES = 15

# Drain detection: the queue must look empty for this many consecutive one-minute datapoints.
DRAIN_EVALUATION_MINUTES = 5

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class FunctionSizing:
    memory_mb: int
    timeout_seconds: int


@dataclass(frozen=True)
class EnvironmentSettings:
    """Everything that may differ between environments."""

    environment: str
    alert_email: str | None
    vpc_enabled: bool
    schedule_enabled: bool
    # Keep the state table and the credentials secret when the stack is deleted; prod also protects the table.
    retain_state: bool
    table_deletion_protection: bool
    nat_gateways: int = 1
    schedule_expression: str = resources.SCHEDULE_CRON
    schedule_timezone: str = resources.SCHEDULE_TIMEZONE
    lister: FunctionSizing = FunctionSizing(resources.LISTER_MEMORY_MB, resources.LISTER_TIMEOUT_SECONDS)
    downloader: FunctionSizing = FunctionSizing(
        resources.DOWNLOADER_MEMORY_MB, resources.DOWNLOADER_TIMEOUT_SECONDS
    )
    summary: FunctionSizing = FunctionSizing(resources.SUMMARY_MEMORY_MB, resources.SUMMARY_TIMEOUT_SECONDS)
    rotation: FunctionSizing = FunctionSizing(resources.ROTATION_MEMORY_MB, resources.ROTATION_TIMEOUT_SECONDS)
    downloader_max_concurrency: int = resources.DOWNLOADER_MAX_CONCURRENCY
    log_retention_days: int = resources.LOG_RETENTION_DAYS
    access_log_retention_days: int = 90
    noncurrent_version_expiry_days: int = 30
    log_level: str = "INFO"
    provider: str = resources.DEFAULT_PROVIDER
    # None keeps the runtime's default (https://api.gopro.com); point at a simulator for a rehearsal stack.
    gopro_api_url: str | None = None
    # Empty means any https host (the provider's default); set to pin presigned download hosts.
    allowed_download_hosts: tuple[str, ...] = ()

    @property
    def names(self) -> resources.ResourceNames:
        return resources.names_for(self.environment)

    @property
    def stack_name(self) -> str:
        return f"{STACK_NAME_PREFIX}-{self.environment}"

    def resource_name(self, purpose: str) -> str:
        """Physical name for resources `pipeline.resources` does not name (functions, alarms, rules)."""
        return f"{RESOURCE_PREFIX}-{purpose}-{self.environment}"

    def validate(self) -> None:
        """Refuses combinations that would break the pipeline's guarantees at deploy time or at 2 a.m."""
        if self.downloader.timeout_seconds * 6 > resources.QUEUE_VISIBILITY_TIMEOUT_SECONDS:
            raise ValueError(
                "the queue's visibility timeout must be at least 6x the downloader timeout "
                f"({resources.QUEUE_VISIBILITY_TIMEOUT_SECONDS}s < 6 x {self.downloader.timeout_seconds}s)"
            )
        if not 2 <= self.downloader_max_concurrency <= 1000:
            raise ValueError("SQS event source MaximumConcurrency must be between 2 and 1000")
        if self.alert_email is not None and not _EMAIL.match(self.alert_email):
            raise ValueError(f"alert_email {self.alert_email!r} is not an e-mail address")
        log_retention(self.log_retention_days)
        if self.vpc_enabled and self.nat_gateways < 1:
            raise ValueError("the VPC needs a NAT gateway: the functions call the GoPro API on the internet")


_ENVIRONMENTS: dict[str, EnvironmentSettings] = {
    # dev: no VPC (saves the NAT gateway and endpoints, about 100 USD/month), no nightly run, table disposable.
    "dev": EnvironmentSettings(
        environment="dev",
        alert_email="gopro-sync-alerts+dev@example.com",
        vpc_enabled=False,
        schedule_enabled=False,
        retain_state=False,
        table_deletion_protection=False,
        access_log_retention_days=30,
        noncurrent_version_expiry_days=7,
        log_level="DEBUG",
    ),
    # staging: prod's shape without the VPC; the nightly run proves a release before prod gets it.
    "staging": EnvironmentSettings(
        environment="staging",
        alert_email="gopro-sync-alerts+staging@example.com",
        vpc_enabled=False,
        schedule_enabled=True,
        retain_state=True,
        table_deletion_protection=False,
    ),
    "prod": EnvironmentSettings(
        environment="prod",
        alert_email="gopro-sync-alerts@example.com",
        vpc_enabled=True,
        schedule_enabled=True,
        retain_state=True,
        table_deletion_protection=True,
        access_log_retention_days=365,
        noncurrent_version_expiry_days=90,
    ),
}


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"context {name} must be true or false, got {value!r}")


def settings_for(environment: str, context: Mapping[str, Any] | None = None) -> EnvironmentSettings:
    """The settings of `environment`, with the context overrides applied and validated."""
    if environment not in _ENVIRONMENTS:
        raise ValueError(
            f"unknown environment {environment!r}; expected one of {', '.join(resources.ENVIRONMENTS)}"
        )
    settings = _ENVIRONMENTS[environment]
    context = context or {}
    changes: dict[str, Any] = {}
    if context.get("alert_email"):
        changes["alert_email"] = str(context["alert_email"])
    if context.get("vpc") is not None:
        changes["vpc_enabled"] = _as_bool("vpc", context["vpc"])
    if context.get("schedule") is not None:
        changes["schedule_enabled"] = _as_bool("schedule", context["schedule"])
    settings = replace(settings, **changes)
    settings.validate()
    return settings


_RETENTION_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
}


def log_retention(days: int) -> aws_logs.RetentionDays:
    """The `aws_logs.RetentionDays` member for `days` (CloudWatch Logs accepts only these values)."""
    if days not in _RETENTION_DAYS:
        raise ValueError(f"CloudWatch Logs cannot retain for {days} days; use one of {sorted(_RETENTION_DAYS)}")
    return getattr(aws_logs.RetentionDays, _RETENTION_DAYS[days])
