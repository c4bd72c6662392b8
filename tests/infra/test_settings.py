"""Per-environment settings: the guarantees they refuse to break (no synthesis needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra_cdk.settings import FunctionSizing, settings_for

pytestmark = pytest.mark.infra


def test_prod_runs_in_a_vpc_and_protects_its_table() -> None:
    prod = settings_for("prod")
    assert prod.vpc_enabled
    assert prod.table_deletion_protection
    assert not settings_for("dev").vpc_enabled


def test_context_overrides() -> None:
    settings = settings_for("dev", {"alert_email": "me@example.org", "vpc": "true", "schedule": "false"})
    assert (settings.alert_email, settings.vpc_enabled, settings.schedule_enabled) == (
        "me@example.org",
        True,
        False,
    )


def test_refuses_a_downloader_timeout_the_visibility_timeout_cannot_cover() -> None:
    settings = replace(settings_for("dev"), downloader=FunctionSizing(1024, 901))
    with pytest.raises(ValueError, match="6x"):
        settings.validate()


@pytest.mark.parametrize(
    ("context", "message"),
    [({"alert_email": "not-an-address"}, "e-mail"), ({"vpc": "maybe"}, "true or false")],
)
def test_refuses_bad_overrides(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_for("staging", context)


def test_unknown_environment() -> None:
    with pytest.raises(ValueError, match="unknown environment"):
        settings_for("qa")
