"""The configuration file (issue 13): every field reaches the template, a bad or missing one is one clear error."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from infra_cdk import config_file
from infra_cdk.config_file import ConfigFileError
from infra_cdk.lifecycle import LIFECYCLES
from infra_cdk.settings import PRESETS, alarm_metric_count
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra

MINIMAL = {"alert_email": "me@archive.internal"}
# The settings config/examples/full.json must change from its preset's values.
FULL_FIELDS = (
    *("region", "vpc_enabled", "lifecycle", "log_level", "schedule_expression", "schedule_timezone"),
    *("include_photos", "include_edits", "include_raw", "full_reconcile_days", "report_quiet_nights"),
    *("downloader_max_concurrency", "downloader", "log_retention_days", "access_log_retention_days"),
    *("noncurrent_version_expiry_days", "dashboard_enabled", "detailed_alarms", "allowed_download_hosts"),
    *("gopro_api_url", "gopro_auth_url", "nightly_budget_bytes", "archive_operators"),
)


def _load(tmp_path: Path, data: object) -> object:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    return config_file.load(path)


# --- validation (no synthesis) ----------------------------------------------------------------------------------


def test_a_minimal_file_is_the_personal_preset() -> None:
    settings = config_file.from_mapping(MINIMAL)
    assert settings.preset == "personal"
    assert settings.alert_email == "me@archive.internal"
    assert settings.vpc_enabled is PRESETS["personal"].vpc_enabled is False


def test_the_file_a_person_edits_refuses_to_synthesize_until_they_put_their_address() -> None:
    with pytest.raises(ConfigFileError, match=r"config/personal.json: alert_email .*placeholder"):
        config_file.load(config_file.DEFAULT_CONFIG)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "alert_email: required"),
        ({"alert_email": ""}, "alert_email: required"),
        ({"alert_email": "you@example.com"}, "alert_email .*placeholder"),
        ({"alert_email": "nobody"}, "alert_email .*not an e-mail address"),
        ({**MINIMAL, "preset": "qa"}, "preset: expected one of personal, dev, staging, prod"),
        ({**MINIMAL, "vpc": "yes"}, 'vpc: expected true or false, got "yes"'),
        ({**MINIMAL, "colour": "blue"}, "colour: unknown field"),
        ({**MINIMAL, "schedule": {"time": "25:00"}}, "schedule.time: expected HH:MM"),
        ({**MINIMAL, "schedule": {"timezone": "Paris"}}, "schedule.timezone: 'Paris' is not an IANA time zone"),
        ({**MINIMAL, "schedule": {"at": "02:00"}}, "schedule.at: unknown field"),
        ({**MINIMAL, "schedule": "02:00"}, "schedule: expected an object"),
        ({**MINIMAL, "downloader": {"concurrency": 1}}, "downloader.concurrency: must be between 2 and 1000"),
        ({**MINIMAL, "downloader": {"memory_mb": 64}}, "downloader.memory_mb: must be between 128 and 10240"),
        ({**MINIMAL, "downloader": {"memory_mb": True}}, "downloader.memory_mb: expected a whole number"),
        ({**MINIMAL, "lifecycle": "glacier"}, "lifecycle: expected one of deep-archive"),
        ({**MINIMAL, "retention": {"logs_days": 45}}, "retention.logs_days: CloudWatch Logs cannot retain"),
        ({**MINIMAL, "full_reconcile_days": 400}, "full_reconcile_days: must be between 0 and 366"),
        ({**MINIMAL, "allowed_download_hosts": ["https://x.com/"]}, "allowed_download_hosts: .*not a host name"),
        ({**MINIMAL, "allowed_download_hosts": "a.com"}, "allowed_download_hosts: expected a list"),
        ({**MINIMAL, "archive": {"videos": False}}, "archive.videos: videos are always archived"),
        ({**MINIMAL, "provider": {"name": "insta360"}}, "provider.name: expected one of gopro"),
        ({**MINIMAL, "provider": {"api_url": "http://api"}}, "provider.api_url: expected an https URL"),
        ({**MINIMAL, "region": "Ireland"}, "region: expected an AWS region"),
        ({**MINIMAL, "log_level": "LOUD"}, "log_level: expected one of DEBUG"),
        ({**MINIMAL, "archive": {"nightly_budget_gb": 0}}, "archive.nightly_budget_gb: must be between"),
        ({**MINIMAL, "archive": {"nightly_budget_gb": "50GB"}}, "archive.nightly_budget_gb: expected a number"),
        ({**MINIMAL, "archive": {"nightly_budget_gb": True}}, "archive.nightly_budget_gb: expected a number"),
        ({**MINIMAL, "archive": {"nightly_budget_gb": 10**6}}, "archive.nightly_budget_gb: must be between"),
        ({**MINIMAL, "archive": {"operators": ["admin"]}}, "archive.operators: 'admin' is not an IAM role"),
        ({**MINIMAL, "archive": {"operators": ["arn:aws:iam::123:role/x"]}}, "archive.operators: .*not an IAM"),
        ({**MINIMAL, "archive": {"operators": "arn:aws:iam::111122223333:role/x"}}, "archive.operators: expected"),
    ],
)
def test_a_bad_or_missing_field_is_one_error_naming_it(tmp_path: Path, data: dict, message: str) -> None:
    with pytest.raises(ConfigFileError, match=rf"^mine.json: {message}|/mine.json: {message}") as caught:
        _load(tmp_path, data)
    assert "\n" not in str(caught.value)


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigFileError, match="not valid JSON"):
        config_file.load(tmp_path / "broken.json")
    with pytest.raises(ConfigFileError, match="no such configuration file"):
        config_file.load(tmp_path / "absent.json")


def test_the_full_example_sets_every_field() -> None:
    data = json.loads((config_file.EXAMPLES_DIR / "full.json").read_text())
    assert set(data) == set(config_file.TOP_LEVEL)
    for section, fields in config_file.SECTIONS.items():
        assert set(data[section]) == set(fields), section
    defaults = config_file.from_mapping({**MINIMAL, "preset": data["preset"]})
    full = config_file.load("full")
    same = [name for name in FULL_FIELDS if getattr(full, name) == getattr(defaults, name)]
    assert same == [], "full.json should change these from the preset"


# --- the synthesized templates carry every value -----------------------------------------------------------------


def _downloader_env(stack: Synthesized) -> dict:
    _, fn = stack.function("downloader")
    return fn["Properties"]["Environment"]["Variables"]


def test_full_example_reaches_the_function_environment(synthesized: dict[str, Synthesized]) -> None:
    full = synthesized["full"]
    for purpose in ("lister", "downloader", "summary", "rotation"):
        _, fn = full.function(purpose)
        variables = fn["Properties"]["Environment"]["Variables"]
        assert variables["INCLUDE_PHOTOS"] == "true", purpose
        assert variables["INCLUDE_EDITS"] == "false", purpose  # the full example turns the default (on) off
        assert variables["INCLUDE_RAW"] == "true", purpose
        assert variables["FULL_RECONCILE_DAYS"] == "14", purpose
        assert variables["REPORT_QUIET_NIGHTS"] == "true", purpose
        assert variables["ALLOWED_DOWNLOAD_HOSTS"] == "*.cloudfront.net,gopro-media.s3.amazonaws.com", purpose
        assert variables["GOPRO_API_URL"] == "https://api.gopro.test.internal", purpose
        assert variables["GOPRO_AUTH_URL"] == "https://auth.gopro.test.internal", purpose
        assert variables["LOG_LEVEL"] == "DEBUG", purpose
        assert "VpcConfig" in fn["Properties"], purpose


def test_the_nightly_budget_reaches_the_lister_only_and_absent_means_measured(
    synthesized: dict[str, Synthesized],
) -> None:
    """Issue 12 point 3: `archive.nightly_budget_gb` (decimal GB) is the lister's NIGHTLY_BUDGET_BYTES."""
    full = synthesized["full"]
    for purpose in ("lister", "downloader", "summary", "rotation", "restore-completed"):
        _, fn = full.function(purpose)
        variables = fn["Properties"]["Environment"]["Variables"]
        expected = "250000000000" if purpose == "lister" else None
        assert variables.get("NIGHTLY_BUDGET_BYTES") == expected, purpose
    for name in ("personal", "dev", "staging", "prod"):
        _, lister = synthesized[name].function("lister")
        assert "NIGHTLY_BUDGET_BYTES" not in lister["Properties"]["Environment"]["Variables"], name
    assert config_file.from_mapping({**MINIMAL, "archive": {"nightly_budget_gb": 0.5}}).nightly_budget_bytes == (
        500_000_000
    )
    assert config_file.from_mapping({**MINIMAL, "archive": {"nightly_budget_gb": None}}).nightly_budget_bytes == 0


def test_full_example_reaches_sizing_schedule_lifecycle_retention(synthesized: dict[str, Synthesized]) -> None:
    full = synthesized["full"]
    _, downloader = full.function("downloader")
    assert downloader["Properties"]["MemorySize"] == 768
    [(_, mapping)] = full.resources_of("AWS::Lambda::EventSourceMapping").items()
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 3}
    _, schedule = full.one("AWS::Scheduler::Schedule")
    props = schedule["Properties"]
    assert (props["ScheduleExpression"], props["ScheduleExpressionTimezone"]) == (
        "cron(30 3 * * ? *)",
        "America/New_York",
    )
    assert props["State"] == "ENABLED"
    [archive] = [r for lid, r in full.resources_of("AWS::S3::Bucket").items() if "Archive" in lid]
    rules = {r["Id"]: r for r in archive["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["media-glacier-ir-then-deep-archive"]["Transitions"] == [
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 0},
        {"StorageClass": "DEEP_ARCHIVE", "TransitionInDays": 90},
    ]
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 14
    [access_logs] = [r for lid, r in full.resources_of("AWS::S3::Bucket").items() if "AccessLogs" in lid]
    assert access_logs["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 180
    retentions = {r["Properties"]["RetentionInDays"] for r in full.resources_of("AWS::Logs::LogGroup").values()}
    assert 60 in retentions
    full.one("AWS::CloudWatch::Dashboard")
    assert full.resources_of("AWS::EC2::NatGateway")
    full.assertions.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "archive-owner@archive.internal"}
    )


def test_personal_preset_template(synthesized: dict[str, Synthesized]) -> None:
    personal = synthesized["personal"]
    assert personal.template["Description"].endswith("nightly GoPro cloud archive into S3")
    variables = _downloader_env(personal)
    assert (variables["INCLUDE_PHOTOS"], variables["FULL_RECONCILE_DAYS"], variables["REPORT_QUIET_NIGHTS"]) == (
        "false",
        "7",
        "false",
    )
    assert "ALLOWED_DOWNLOAD_HOSTS" not in variables
    _, downloader = personal.function("downloader")
    assert downloader["Properties"]["MemorySize"] == 512
    assert "VpcConfig" not in downloader["Properties"]
    assert not personal.resources_of("AWS::EC2::NatGateway")
    assert not personal.resources_of("AWS::EC2::VPCEndpoint")
    assert not personal.resources_of("AWS::CloudWatch::Dashboard")
    _, schedule = personal.one("AWS::Scheduler::Schedule")
    assert schedule["Properties"]["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["Properties"]["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert schedule["Properties"]["State"] == "ENABLED"
    [archive] = [r for lid, r in personal.resources_of("AWS::S3::Bucket").items() if "Archive" in lid]
    rules = {r["Id"]: r for r in archive["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["media-deep-archive"]["Transitions"] == [{"StorageClass": "DEEP_ARCHIVE", "TransitionInDays": 0}]
    _, table = personal.one("AWS::DynamoDB::Table")
    assert table["DeletionPolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True


@pytest.mark.parametrize("name", sorted(LIFECYCLES))
def test_every_lifecycle_preset_respects_the_minimum_stays(name: str) -> None:
    from infra_cdk.lifecycle import MINIMUM_DAYS

    steps = LIFECYCLES[name].transitions
    for current, following in itertools.pairwise(steps):
        assert following.after_days - current.after_days >= MINIMUM_DAYS[current.storage_class], name


def test_alarm_metric_count_matches_the_templates(synthesized: dict[str, Synthesized]) -> None:
    """The cost estimator prices `alarm_metric_count`; it must be what the stack really alarms on."""
    for name, stack in synthesized.items():
        metrics = 0
        for alarm in stack.resources_of("AWS::CloudWatch::Alarm").values():
            props = alarm["Properties"]
            metrics += sum(1 for m in props["Metrics"] if "MetricStat" in m) if "Metrics" in props else 1
        assert metrics == alarm_metric_count(config_file.load(name)), name


def test_the_deploy_workflows_env_context_needs_an_address() -> None:
    """.github/workflows/deploy-environment.yml passes `-c env=<preset> -c alert_email=...`."""
    from infra_cdk.app import build_app

    with pytest.raises(ConfigFileError, match="-c env=staging needs -c alert_email"):
        build_app(context={"env": "staging"}, bundle=False)
    _, stack = build_app(context={"env": "staging", "alert_email": "ops@archive.internal"}, bundle=False)
    assert (stack.settings.preset, stack.settings.alert_email) == ("staging", "ops@archive.internal")
