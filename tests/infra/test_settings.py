"""Presets and their settings: the guarantees they refuse to break (no synthesis needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra_cdk.settings import PRESETS, FunctionSizing, settings_for

EMAIL = {"alert_email": "me@archive.internal"}

pytestmark = pytest.mark.infra


def test_prod_runs_in_a_vpc_and_protects_its_table() -> None:
    prod = settings_for("prod", EMAIL)
    assert prod.vpc_enabled
    assert prod.table_deletion_protection
    assert not settings_for("dev", EMAIL).vpc_enabled


def test_context_overrides() -> None:
    settings = settings_for("dev", {"alert_email": "me@archive.internal", "vpc": "true", "schedule": "false"})
    assert (settings.alert_email, settings.vpc_enabled, settings.schedule_enabled) == (
        "me@archive.internal",
        True,
        False,
    )


def test_refuses_a_downloader_timeout_the_visibility_timeout_cannot_cover() -> None:
    settings = replace(settings_for("dev", EMAIL), downloader=FunctionSizing(1024, 901))
    with pytest.raises(ValueError, match="6x"):
        settings.validate()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"alert_email": "not-an-address"}, "e-mail"),
        ({**EMAIL, "vpc": "maybe"}, "true or false"),
        ({}, "alert_email is required"),
        ({"alert_email": "alerts@example.com"}, "placeholder"),
        ({"alert_email": "me@mail.example.org"}, "placeholder"),
        ({"alert_email": "me@archive.invalid"}, "placeholder"),
        ({"alert_email": "me@host.test"}, "placeholder"),
    ],
)
def test_refuses_bad_overrides(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_for("staging", context)


def test_unknown_environment() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        settings_for("qa", EMAIL)


def test_the_personal_preset_is_one_cheap_environment() -> None:
    personal = PRESETS["personal"]
    assert (personal.vpc_enabled, personal.dashboard_enabled, personal.detailed_alarms) == (False, False, False)
    assert personal.schedule_enabled
    assert personal.retain_state
    assert personal.lifecycle == "deep-archive"
    # Its resources use the prod names: pipeline.resources knows dev, staging and prod only.
    assert personal.environment == "prod"
