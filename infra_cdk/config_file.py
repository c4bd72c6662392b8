"""The one configuration file a person edits (`config/personal.json`), read and validated into settings.

Why a file rather than CDK context flags: the settings a person is most likely to touch (what to archive, the
schedule, the alert address, the lifecycle, the VPC) must survive between deploys, be reviewable in one place,
and be read by `scripts/estimate_cost.py` as well as by the stack, so the estimate prices what is deployed.

Every field is optional except `alert_email`; a missing one keeps the preset's value. A wrong one is a single
`ConfigFileError` naming the file and the field (`config/personal.json: schedule.time: ...`). Unknown fields are
refused too: a typo must not silently keep a default. docs/deployment.md documents every field.

Pure Python (no CDK import), like `infra_cdk.settings` and `infra_cdk.lifecycle`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

from infra_cdk.lifecycle import LIFECYCLES
from infra_cdk.settings import DEFAULT_PRESET, PRESET_NAMES, EnvironmentSettings, FunctionSizing, preset
from pipeline import resources
from pipeline.config import ConfigError, Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"
DEFAULT_CONFIG = CONFIG_DIR / "personal.json"
EXAMPLES_DIR = CONFIG_DIR / "examples"

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Lambda memory: 128 MB to 10,240 MB in 1 MB steps.
MEMORY_RANGE = (128, 10_240)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# `archive.nightly_budget_gb`: decimal gigabytes (10^9 bytes) one night may queue; up to 100 TB.
BUDGET_GB_RANGE = (0.001, 100_000)
# `archive.operators`: IAM role or user ARNs (an `ArnLike` pattern: `*` allowed in the name).
OPERATOR_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[A-Za-z0-9+=,.@_/*-]+$")

# The fields and the sub-fields of each section; anything else is refused.
SECTIONS: dict[str, tuple[str, ...]] = {
    "provider": ("name", "api_url", "auth_url"),
    "archive": ("videos", "photos", "edits", "raw", "nightly_budget_gb", "operators"),
    "schedule": ("enabled", "time", "timezone"),
    "downloader": ("concurrency", "memory_mb"),
    "retention": ("logs_days", "access_logs_days", "noncurrent_versions_days", "keep_state_on_delete"),
    "monitoring": ("dashboard", "detailed_alarms"),
}
TOP_LEVEL = (
    "$comment",
    "preset",
    "alert_email",
    "region",
    "full_reconcile_days",
    "report_quiet_nights",
    "allowed_download_hosts",
    "lifecycle",
    "vpc",
    "log_level",
    *SECTIONS,
)


class ConfigFileError(ValueError):
    """One wrong or missing field of the configuration file; the message names the file and the field."""


def resolve(name_or_path: str | Path | None) -> Path:
    """A path as given, or `config/examples/<name>.json` for a bare preset-like name ("dev", "personal")."""
    if name_or_path is None:
        return DEFAULT_CONFIG
    candidate = Path(name_or_path)
    if candidate.suffix == ".json" or candidate.parent != Path("."):
        return candidate if candidate.is_absolute() else (Path.cwd() / candidate)
    return EXAMPLES_DIR / f"{candidate}.json"


def load(name_or_path: str | Path | None = None, *, require_alert_email: bool = True) -> EnvironmentSettings:
    """The validated settings of a configuration file (see `resolve` for what `name_or_path` may be).

    `require_alert_email=False` reads a file whose address is not filled in yet (the cost estimator)."""
    path = resolve(name_or_path)
    label = _label(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigFileError(f"{label}: no such configuration file (copy config/personal.json)") from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{label}: not valid JSON ({exc})") from None
    return from_mapping(data, label, require_alert_email=require_alert_email)


def from_mapping(
    data: Any, label: str = "configuration", *, require_alert_email: bool = True
) -> EnvironmentSettings:
    """Settings from the parsed file: the preset's values, each field of the file on top, then validated."""
    reader = _Reader(label)
    if not isinstance(data, Mapping):
        raise ConfigFileError(f"{label}: expected a JSON object at the top level")
    reader.known(data, TOP_LEVEL, "")
    name = reader.choice(data, "preset", PRESET_NAMES, DEFAULT_PRESET)
    base = preset(name)
    changes: dict[str, Any] = {}

    email = data.get("alert_email")
    if require_alert_email and (email is None or (isinstance(email, str) and not email.strip())):
        raise ConfigFileError(f"{label}: alert_email: required (every alarm and the nightly report go there)")
    changes["alert_email"] = reader.string(data, "alert_email", "").strip()
    changes["region"] = reader.pattern(data, "region", REGION, "an AWS region such as eu-west-1", base.region)
    changes["vpc_enabled"] = reader.boolean(data, "vpc", base.vpc_enabled)
    changes["lifecycle"] = reader.choice(data, "lifecycle", tuple(LIFECYCLES), base.lifecycle)
    changes["log_level"] = reader.choice(data, "log_level", LOG_LEVELS, base.log_level)
    changes["full_reconcile_days"] = reader.integer(data, "full_reconcile_days", 0, 366, base.full_reconcile_days)
    changes["report_quiet_nights"] = reader.boolean(data, "report_quiet_nights", base.report_quiet_nights)
    hosts = reader.string_list(data, "allowed_download_hosts", base.allowed_download_hosts)
    changes["allowed_download_hosts"] = tuple(host.lower() for host in hosts)

    provider = reader.section(data, "provider")
    changes["provider"] = reader.choice(provider, "name", (resources.DEFAULT_PROVIDER,), base.provider, "provider")
    changes["gopro_api_url"] = reader.url(provider, "api_url", base.gopro_api_url, "provider")
    changes["gopro_auth_url"] = reader.url(provider, "auth_url", base.gopro_auth_url, "provider")

    archive = reader.section(data, "archive")
    if not reader.boolean(archive, "videos", True, "archive"):
        raise ConfigFileError(f"{label}: archive.videos: videos are always archived; it can only be true")
    changes["include_photos"] = reader.boolean(archive, "photos", base.include_photos, "archive")
    changes["include_edits"] = reader.boolean(archive, "edits", base.include_edits, "archive")
    changes["include_raw"] = reader.boolean(archive, "raw", base.include_raw, "archive")
    if "nightly_budget_gb" in archive and archive["nightly_budget_gb"] is not None:
        budget = reader.number(archive, "nightly_budget_gb", *BUDGET_GB_RANGE, "archive")
        changes["nightly_budget_bytes"] = round(budget * 1_000_000_000)
    operators = reader.string_list(archive, "operators", base.archive_operators, "archive")
    for arn in operators:
        if not OPERATOR_ARN.match(arn):
            raise reader.fail("operators", "archive", f"{arn!r} is not an IAM role or user ARN")
    changes["archive_operators"] = operators

    schedule = reader.section(data, "schedule")
    changes["schedule_enabled"] = reader.boolean(schedule, "enabled", base.schedule_enabled, "schedule")
    if "time" in schedule:
        time = reader.pattern(schedule, "time", _TIME, "HH:MM, 24-hour (for example 02:00)", "", "schedule")
        hour, minute = (int(part) for part in time.split(":"))
        changes["schedule_expression"] = f"cron({minute} {hour} * * ? *)"
    changes["schedule_timezone"] = reader.timezone(schedule, "timezone", base.schedule_timezone, "schedule")

    downloader = reader.section(data, "downloader")
    concurrency = reader.integer(downloader, "concurrency", 2, 1000, base.downloader_max_concurrency, "downloader")
    changes["downloader_max_concurrency"] = concurrency
    memory = reader.integer(downloader, "memory_mb", *MEMORY_RANGE, base.downloader.memory_mb, "downloader")
    changes["downloader"] = FunctionSizing(memory, base.downloader.timeout_seconds)

    retention = reader.section(data, "retention")
    changes["log_retention_days"] = reader.integer(
        retention, "logs_days", 1, 3653, base.log_retention_days, "retention"
    )
    changes["access_log_retention_days"] = reader.integer(
        retention, "access_logs_days", 1, 3653, base.access_log_retention_days, "retention"
    )
    changes["noncurrent_version_expiry_days"] = reader.integer(
        retention, "noncurrent_versions_days", 1, 3653, base.noncurrent_version_expiry_days, "retention"
    )
    keep = reader.boolean(retention, "keep_state_on_delete", base.retain_state, "retention")
    changes["retain_state"] = keep
    changes["table_deletion_protection"] = base.table_deletion_protection and keep

    monitoring = reader.section(data, "monitoring")
    changes["dashboard_enabled"] = reader.boolean(monitoring, "dashboard", base.dashboard_enabled, "monitoring")
    changes["detailed_alarms"] = reader.boolean(monitoring, "detailed_alarms", base.detailed_alarms, "monitoring")

    settings = replace(base, **changes)
    _check_runtime_values(settings, label)
    try:
        settings.validate(require_alert_email=require_alert_email)
    except ValueError as exc:
        message = str(exc)
        field = _field_of(message)
        if message.startswith(field.removesuffix(": ")):  # the message already begins with the field's name
            field = ""
        raise ConfigFileError(f"{label}: {field}{message}") from None
    return settings


def _check_runtime_values(settings: EnvironmentSettings, label: str) -> None:
    """Values the functions validate again at start-up: refuse them at synthesis, with the file's field name."""
    try:
        Settings().with_overrides(
            allowed_download_hosts=settings.allowed_download_hosts,
            full_reconcile_days=settings.full_reconcile_days,
        )
    except ConfigError as exc:
        raise ConfigFileError(f"{label}: allowed_download_hosts: {exc}") from None


def _field_of(message: str) -> str:
    """The file's field behind a settings validation message (the messages name their subject first)."""
    for needle, field in (
        ("alert_email", "alert_email: "),
        ("CloudWatch Logs", "retention.logs_days: "),
        ("MaximumConcurrency", "downloader.concurrency: "),
        ("NAT gateway", "vpc: "),
    ):
        if needle in message:
            return field
    return ""


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _Reader:
    """Typed reads of one field each; every error names the field's dotted path."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, field: str, section: str, message: str) -> ConfigFileError:
        dotted = f"{section}.{field}" if section else field
        return ConfigFileError(f"{self.label}: {dotted}: {message}")

    def known(self, data: Mapping[str, Any], allowed: tuple[str, ...], section: str) -> None:
        for key in data:
            if key not in allowed:
                choices = ", ".join(k for k in allowed if not k.startswith("$"))
                raise self.fail(key, section, f"unknown field (known: {choices})")

    def section(self, data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, Mapping):
            raise self.fail(name, "", "expected an object")
        self.known(value, (*SECTIONS[name], "$comment"), name)
        return value

    def _get(self, data: Mapping[str, Any], key: str, kind: type, what: str, section: str) -> Any:
        value = data[key]
        # bool is an int in Python; a JSON true is not a number here.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, section, f"expected {what}, got {json.dumps(value)}")
        return value

    def boolean(self, data: Mapping[str, Any], key: str, default: bool, section: str = "") -> bool:
        return default if key not in data else self._get(data, key, bool, "true or false", section)

    def string(self, data: Mapping[str, Any], key: str, default: str, section: str = "") -> str:
        return default if key not in data else self._get(data, key, str, "a string", section)

    def integer(
        self, data: Mapping[str, Any], key: str, low: int, high: int, default: int, section: str = ""
    ) -> int:
        if key not in data:
            return default
        value = self._get(data, key, int, "a whole number", section)
        if not low <= value <= high:
            raise self.fail(key, section, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, data: Mapping[str, Any], key: str, low: float, high: float, section: str = "") -> float:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, section, f"expected a number, got {json.dumps(value)}")
        if not low <= value <= high:
            raise self.fail(key, section, f"must be between {low} and {high}, got {value}")
        return float(value)

    def choice(
        self, data: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str, section: str = ""
    ) -> str:
        if key not in data:
            return default
        value = self._get(data, key, str, "a string", section)
        if value not in choices:
            raise self.fail(key, section, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def pattern(
        self, data: Mapping[str, Any], key: str, regex: re.Pattern[str], what: str, default: str, section: str = ""
    ) -> str:
        if key not in data:
            return default
        value = self._get(data, key, str, what, section)
        if not regex.match(value):
            raise self.fail(key, section, f"expected {what}, got {value!r}")
        return value

    def string_list(
        self, data: Mapping[str, Any], key: str, default: tuple[str, ...], section: str = ""
    ) -> tuple[str, ...]:
        if key not in data:
            return default
        value = self._get(data, key, list, "a list of strings", section)
        if not all(isinstance(item, str) and item.strip() for item in value):
            raise self.fail(key, section, "expected a list of non-empty strings")
        return tuple(item.strip() for item in value)

    def url(self, data: Mapping[str, Any], key: str, default: str | None, section: str) -> str | None:
        if key not in data or data[key] is None:
            return default
        value = self._get(data, key, str, "an https URL or null", section).rstrip("/")
        if not value.startswith("https://"):
            raise self.fail(key, section, f"expected an https URL, got {value!r}")
        return value

    def timezone(self, data: Mapping[str, Any], key: str, default: str, section: str) -> str:
        if key not in data:
            return default
        value = self._get(data, key, str, "an IANA time zone such as Europe/Paris", section)
        # EventBridge Scheduler takes IANA names; the tz database here is the same list.
        if value not in available_timezones():
            raise self.fail(key, section, f"{value!r} is not an IANA time zone (e.g. Europe/Paris)")
        return value
