"""The local runtime's emulation of what Lambda gives a function: environment, context, cold start."""

from __future__ import annotations

import logging
import os
from dataclasses import fields

import pytest

from devtools.local_runtime import lambda_emulation
from devtools.local_runtime.lambda_emulation import (
    NO_LIMIT_MS,
    PROVIDER_VARIABLES,
    SETTING_VARIABLES,
    LambdaContext,
    environment,
    function_environment,
)
from pipeline import app as app_module
from pipeline.config import Settings
from pipeline.providers.gopro.config import GoProEnv, GoProSettings
from pipeline.providers.http_manifest.config import ManifestEnv

CUSTOM = Settings(
    environment="staging",
    provider="http-manifest",
    aws_region="us-east-1",
    aws_endpoint_url="http://127.0.0.1:5999",
    table_name="t",
    bucket_name="b",
    queue_url="http://127.0.0.1:5999/000000000000/q",
    dlq_url="http://127.0.0.1:5999/000000000000/dlq",
    topic_arn="arn:aws:sns:us-east-1:000000000000:alerts",
    credentials_secret_id="gopro/credentials/staging",
    metrics_namespace="Custom/Sync",
    tracing_enabled=True,
    log_level="WARNING",
    http_connect_timeout=1.5,
    http_read_timeout=2.25,
    retry_max_attempts=3,
    retry_base_delay=0.01,
    retry_max_delay=0.05,
    token_refresh_margin_seconds=60,
    list_page_size=7,
    include_photos=True,
    full_reconcile_days=0,
    report_quiet_nights=True,
    multipart_threshold_bytes=5 * 1024 * 1024,
    part_size_bytes=6 * 1024 * 1024,
    transfer_window=3,
    allowed_download_hosts=("cdn.example.com", "*.example.org"),
    nightly_budget_bytes=123_456_789,
    local_mode=True,
).with_env(
    {
        GoProEnv.API_URL: "http://127.0.0.1:6001",
        GoProEnv.AUTH_URL: "http://127.0.0.1:6002",
        GoProEnv.CLIENT_ID: "id",
        GoProEnv.CLIENT_SECRET: "secret-value",
        GoProEnv.REFRESH_TOKEN: "refresh-value",
        GoProEnv.ACCESS_TOKEN: "access-value",
        ManifestEnv.URL: "http://127.0.0.1:6003/manifest.json",
    }
)


def test_every_setting_has_its_variable() -> None:
    names = {f.name for f in fields(Settings)}
    assert set(SETTING_VARIABLES) | {"env"} == names
    assert set(PROVIDER_VARIABLES) == set(GoProEnv) | set(ManifestEnv)


def test_every_setting_differs_from_its_default_in_the_round_trip_sample() -> None:
    defaults = Settings()
    same = [
        f.name
        for f in fields(Settings)
        if f.name != "env" and getattr(CUSTOM, f.name) == getattr(defaults, f.name)
    ]
    assert same == []
    assert GoProSettings.of(CUSTOM) != GoProSettings.from_env({})


@pytest.mark.parametrize("settings", [Settings(), CUSTOM], ids=["defaults", "custom"])
def test_the_function_environment_gives_the_same_settings_back(settings: Settings) -> None:
    env = {name: value for name, value in function_environment(settings).items() if value is not None}
    assert Settings.from_env(env) == settings
    assert GoProSettings.from_env(env) == GoProSettings.of(settings)


def test_unset_values_are_removed_from_the_environment_and_everything_is_restored(monkeypatch) -> None:
    monkeypatch.setenv("GOPRO_REFRESH_TOKEN", "from-the-shell")
    monkeypatch.delenv("TABLE_NAME", raising=False)
    with environment(function_environment(Settings(table_name="inside", env={}))):
        assert "GOPRO_REFRESH_TOKEN" not in os.environ
        assert os.environ["TABLE_NAME"] == "inside"
    assert os.environ["GOPRO_REFRESH_TOKEN"] == "from-the-shell"
    assert "TABLE_NAME" not in os.environ


def test_cold_start_builds_the_handlers_app_from_the_function_environment(monkeypatch) -> None:
    monkeypatch.setattr(app_module, "_app", None)  # restored after the test
    first = lambda_emulation.cold_start(CUSTOM)
    assert first.settings == CUSTOM
    assert lambda_emulation.current_app() is first  # what the handlers get
    other = CUSTOM.with_overrides(table_name="another-stack")
    second = lambda_emulation.cold_start(other)
    assert second is not first
    assert lambda_emulation.current_app().settings.table_name == "another-stack"
    assert "TABLE_NAME" not in os.environ or os.environ["TABLE_NAME"] != "another-stack"


def test_the_context_counts_down_from_the_timeout() -> None:
    context = LambdaContext(function_name="f", invoked_function_arn=None, timeout_seconds=900)
    assert 899_000 < context.get_remaining_time_in_millis() <= 900_000
    unlimited = LambdaContext(function_name="f", invoked_function_arn=None, timeout_seconds=None)
    assert unlimited.get_remaining_time_in_millis() == NO_LIMIT_MS
    assert context.aws_request_id != unlimited.aws_request_id


def test_cold_start_keeps_the_host_logging(monkeypatch) -> None:
    monkeypatch.setattr(app_module, "_app", None)  # restored after the test
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    botocore_level = logging.getLogger("botocore").level
    lambda_emulation.cold_start(CUSTOM)  # App.from_env configures a Lambda container's logging
    assert root.handlers == handlers
    assert root.level == level
    assert logging.getLogger("botocore").level == botocore_level
