"""Settings of one deployment: a preset (personal, dev, staging, prod) plus the fields of its configuration file.

Why presets: what differs between a personal archive and a dev/staging/prod pipeline run for others (VPC, schedule,
retention, monitoring depth, deletion protection) is a handful of values; keeping them side by side makes the
differences reviewable at a glance. A person edits one JSON file (`config/personal.json`, read by
`infra_cdk.config_file`), which names a preset and overrides any of its values. Values shared with the runtime
(timeouts, queue parameters, names) come from `pipeline.resources` and are never repeated here.

This module imports no CDK module at import time: `scripts/estimate_cost.py` reads the same settings without
starting the CDK's Node runtime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from infra_cdk.lifecycle import DEFAULT_LIFECYCLE, lifecycle
from pipeline import resources

if TYPE_CHECKING:
    from aws_cdk import aws_logs

STACK_NAME_PREFIX = "GoProSync"
RESOURCE_PREFIX = "gopro-sync"

# Glacier IR and Deep Archive bill at least 128 KiB / 40 KiB per object; smaller objects (thumbnails, sidecars)
# stay in Standard, where they cost less.
LIFECYCLE_MIN_OBJECT_BYTES = 128 * 1024
# Multipart uploads resume across retries within one night; a week is far beyond any resume window.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7

# Alarm thresholds, see docs/monitoring.md. Authentication failures alarm on the first one: the lister fails once
# a night at most, so "more than one in 5 minutes" would never fire for a revoked token.
ALARM_PERIOD_MINUTES = 5
FAILED_VIDEOS_THRESHOLD = 3
AUTH_FAILURES_THRESHOLD = 1
LAMBDA_ERRORS_THRESHOLD = 5
LAMBDA_THROTTLES_THRESHOLD = 1
LOW_THROUGHPUT_MBPS = 20
LOW_THROUGHPUT_MINUTES = 15

# Drain detection: the queue must look empty for this many consecutive one-minute datapoints.
DRAIN_EVALUATION_MINUTES = 5

PRESET_NAMES: tuple[str, ...] = ("personal", "dev", "staging", "prod")
DEFAULT_PRESET = "personal"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Names reserved for documentation and testing (RFC 2606, RFC 6761): an address there can never receive alerts.
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
PLACEHOLDER_TLDS = ("example", "invalid", "test", "localhost")


def placeholder_reason(address: str) -> str | None:
    """Why `address` cannot receive alerts (a reserved documentation or test name), or None if it may."""
    domain = address.rsplit("@", 1)[-1].lower().rstrip(".")
    for reserved in PLACEHOLDER_DOMAINS:
        if domain == reserved or domain.endswith(f".{reserved}"):
            return f"{reserved} is reserved for documentation (RFC 2606)"
    tld = domain.rsplit(".", 1)[-1]
    if tld in PLACEHOLDER_TLDS:
        return f".{tld} is a reserved top-level domain (RFC 2606/6761)"
    return None


@dataclass(frozen=True)
class FunctionSizing:
    memory_mb: int
    timeout_seconds: int


@dataclass(frozen=True)
class EnvironmentSettings:
    """Everything one deployment may set (a preset's values, then the configuration file's)."""

    environment: str
    alert_email: str | None
    vpc_enabled: bool
    schedule_enabled: bool
    # Keep the state table and the credentials secret when the stack is deleted; protect the table from deletion.
    retain_state: bool
    table_deletion_protection: bool
    preset: str = DEFAULT_PRESET
    # The region the deployment is priced for (scripts/estimate_cost.py); the stack itself deploys where the CLI
    # points (AWS_REGION / --region), see docs/deployment.md.
    region: str = "eu-west-1"
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
    gopro_auth_url: str | None = None
    # Empty means any https host (the provider's default); set to pin presigned download hosts.
    allowed_download_hosts: tuple[str, ...] = ()
    # What to archive. Videos always; photos when INCLUDE_PHOTOS (pipeline/config.py); edits and RAW sidecars when
    # INCLUDE_EDITS / INCLUDE_RAW (read by the GoPro provider, pipeline/providers/gopro/config.py).
    include_photos: bool = False
    include_edits: bool = True  # issue 11: edits made in the app are archived by default
    include_raw: bool = False
    full_reconcile_days: int = 7
    report_quiet_nights: bool = False
    # Bytes one night may queue (the lister's NIGHTLY_BUDGET_BYTES); 0 leaves it to the lister's measurement.
    nightly_budget_bytes: int = 0
    # IAM principal ARNs that may put the catalog page and sidecars into the archive bucket (`ArnLike`
    # patterns); empty means any IAM principal of the account. Nobody but the downloader writes media.
    archive_operators: tuple[str, ...] = ()
    lifecycle: str = DEFAULT_LIFECYCLE
    # The dashboard (3 USD/month) and the alarms that only repeat what another alarm or the nightly report
    # already says (function errors and throttles, failed videos, lister failures, low throughput).
    dashboard_enabled: bool = True
    detailed_alarms: bool = True

    @property
    def names(self) -> resources.ResourceNames:
        return resources.names_for(self.environment)

    @property
    def stack_name(self) -> str:
        return f"{STACK_NAME_PREFIX}-{self.environment}"

    def resource_name(self, purpose: str) -> str:
        """Physical name for resources `pipeline.resources` does not name (functions, alarms, rules)."""
        return f"{RESOURCE_PREFIX}-{purpose}-{self.environment}"

    def validate(self, *, require_alert_email: bool = True) -> None:
        """Refuses combinations that would break the pipeline's guarantees at deploy time or at 2 a.m.

        `require_alert_email=False` is for readers that deploy nothing (the cost estimator)."""
        if self.downloader.timeout_seconds * 6 > resources.QUEUE_VISIBILITY_TIMEOUT_SECONDS:
            raise ValueError(
                "the queue's visibility timeout must be at least 6x the downloader timeout "
                f"({resources.QUEUE_VISIBILITY_TIMEOUT_SECONDS}s < 6 x {self.downloader.timeout_seconds}s)"
            )
        if not 2 <= self.downloader_max_concurrency <= 1000:
            raise ValueError("SQS event source MaximumConcurrency must be between 2 and 1000")
        if require_alert_email:
            self._check_alert_email()
        _check_retention(self.log_retention_days)
        lifecycle(self.lifecycle)
        if self.vpc_enabled and self.nat_gateways < 1:
            raise ValueError("the VPC needs a NAT gateway: the functions call the GoPro API on the internet")

    def _check_alert_email(self) -> None:
        if not self.alert_email:
            raise ValueError("alert_email is required: every alarm and the nightly report are sent there")
        if not _EMAIL.match(self.alert_email):
            raise ValueError(f"alert_email {self.alert_email!r} is not an e-mail address")
        reason = placeholder_reason(self.alert_email)
        if reason:
            raise ValueError(f"alert_email {self.alert_email!r} is a placeholder ({reason}): put your own address")


PRESETS: dict[str, EnvironmentSettings] = {
    # personal: one archive of one person's library. No VPC (the NAT gateway and endpoints would cost 15x the
    # rest of the stack), no dashboard, the essential alarms only, Deep Archive from the first night, a downloader
    # of 512 MB (bench: 130 MiB peak RSS; CPU for about 110 MiB/s, docs/performance.md). Its resources carry the
    # `prod` suffix (pipeline.resources names dev, staging and prod): it is the one production archive.
    "personal": EnvironmentSettings(
        environment="prod",
        alert_email=None,
        preset="personal",
        vpc_enabled=False,
        schedule_enabled=True,
        retain_state=True,
        table_deletion_protection=True,
        downloader=FunctionSizing(512, resources.DOWNLOADER_TIMEOUT_SECONDS),
        dashboard_enabled=False,
        detailed_alarms=False,
    ),
    # dev: no VPC, no nightly run, table disposable.
    "dev": EnvironmentSettings(
        environment="dev",
        alert_email=None,
        preset="dev",
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
        alert_email=None,
        preset="staging",
        vpc_enabled=False,
        schedule_enabled=True,
        retain_state=True,
        table_deletion_protection=False,
    ),
    # prod for a pipeline run for others: in a VPC, every alarm and the dashboard.
    "prod": EnvironmentSettings(
        environment="prod",
        alert_email=None,
        preset="prod",
        vpc_enabled=True,
        schedule_enabled=True,
        retain_state=True,
        table_deletion_protection=True,
        access_log_retention_days=365,
        noncurrent_version_expiry_days=90,
    ),
}


def preset(name: str) -> EnvironmentSettings:
    """A preset's values, not yet validated (it has no alert address: the configuration file gives one)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESET_NAMES)}")
    return PRESETS[name]


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"context {name} must be true or false, got {value!r}")


def with_context(settings: EnvironmentSettings, context: Mapping[str, Any] | None) -> EnvironmentSettings:
    """`settings` with the CDK context overrides (`-c alert_email=… -c vpc=true -c schedule=false`), validated."""
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


def settings_for(name: str, context: Mapping[str, Any] | None = None) -> EnvironmentSettings:
    """The settings of preset `name` with the context overrides applied and validated (needs an alert_email)."""
    return with_context(preset(name), context)


def alarm_metric_count(settings: EnvironmentSettings) -> int:
    """Metrics the stack's alarms watch (CloudWatch bills each): mirrors `components.monitoring` and the drain
    alarm of `components.schedule`; tests/infra/test_monitoring.py checks the synthesized templates agree."""
    drain = 3  # visible + in flight + sent
    essential = 1 + 1 + 1 + 1  # authentication failures, DLQ, failed invocations, messages expired
    silent = 1 if settings.schedule_enabled else 0
    detailed = 0
    if settings.detailed_alarms:
        functions = 5  # lister, downloader, summary, rotation, restore-completed
        # failed videos, low throughput, lister (errors + failures), rotation (errors + failures), API changed,
        # blocked, messages aging, errors and throttles per function
        detailed = 1 + 1 + 2 + 2 + 1 + 1 + 1 + 2 * functions
    return drain + essential + silent + detailed


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


def _check_retention(days: int) -> None:
    if days not in _RETENTION_DAYS:
        raise ValueError(f"CloudWatch Logs cannot retain for {days} days; use one of {sorted(_RETENTION_DAYS)}")


def log_retention(days: int) -> aws_logs.RetentionDays:
    """The `aws_logs.RetentionDays` member for `days` (CloudWatch Logs accepts only these values)."""
    from aws_cdk import aws_logs  # here, not at import: the cost estimator imports this module without CDK

    _check_retention(days)
    return getattr(aws_logs.RetentionDays, _RETENTION_DAYS[days])
