"""The credentials secret's modes, its JSON, and the command that fixes each mode."""

from __future__ import annotations

import json

import pytest

from pipeline.credentials.model import CredentialsError, CredentialsMode, ProviderCredentials
from pipeline.credentials.remedy import dead_credentials_message, fix_command
from pipeline.observability.redaction import redact

CLIENT = {"client_id": "cid", "client_secret": "csecret"}


def test_modes_are_inferred_for_secrets_written_before_modes_existed() -> None:
    assert ProviderCredentials(refresh_token="rt", **CLIENT).mode is CredentialsMode.REFRESH_TOKEN
    assert ProviderCredentials(access_token="at").mode is CredentialsMode.WEB_COOKIE
    assert ProviderCredentials(refresh_token="rt", username="me@x.eu", **CLIENT).mode is CredentialsMode.SIGN_IN
    legacy = ProviderCredentials.from_json(json.dumps({"access_token": "at", "user_id": "u"}))
    assert legacy.mode is CredentialsMode.WEB_COOKIE


def test_a_remembered_password_round_trips_and_makes_the_credentials_renewable() -> None:
    creds = ProviderCredentials(
        declared_mode=CredentialsMode.SIGN_IN, username="me@x.eu", password="pw-remembered", **CLIENT
    )
    assert (creds.refreshable, creds.can_sign_in, creds.renewable) == (False, True, True)
    again = ProviderCredentials.from_json(creds.to_json())
    assert (again.mode, again.username, again.password) == (CredentialsMode.SIGN_IN, "me@x.eu", "pw-remembered")
    assert "pw-remembered" not in repr(again)
    assert redact("the password pw-remembered leaked") == "the password *** leaked"


def test_without_a_password_sign_in_credentials_need_a_refresh_token() -> None:
    document = {"mode": "sign_in", "username": "me@x.eu", **CLIENT}
    with pytest.raises(CredentialsError, match="remembered password"):
        ProviderCredentials.from_json(json.dumps(document))
    assert not ProviderCredentials(username="me@x.eu", **CLIENT).can_sign_in


def test_an_unknown_mode_is_refused_without_echoing_values() -> None:
    with pytest.raises(CredentialsError, match="'mode' must be one of sign_in, refresh_token, web_cookie"):
        ProviderCredentials.from_json(json.dumps({"mode": "forever", "access_token": "at-secret"}))


def test_tokens_from_a_grant_keep_the_mode_and_the_remembered_password() -> None:
    creds = ProviderCredentials(declared_mode=CredentialsMode.SIGN_IN, username="u@x.eu", password="pw", **CLIENT)
    fresh = creds.with_tokens(access_token="at", expires_in=60, refresh_token="rt", user_id="id", now=100.0)
    assert (fresh.mode, fresh.password, fresh.refresh_token, fresh.expires_at) == ("sign_in", "pw", "rt", 160.0)


@pytest.mark.parametrize(
    ("mode", "command"),
    [
        (CredentialsMode.SIGN_IN, "--env prod --username me@x.eu --remember-password"),
        (CredentialsMode.REFRESH_TOKEN, "--env prod --refresh-token-from-stdin"),
        (CredentialsMode.WEB_COOKIE, "--env prod --cookie-from-stdin --user-id <gp_user_id cookie>"),
    ],
)
def test_each_mode_has_its_exact_command(mode: CredentialsMode, command: str) -> None:
    assert fix_command(mode, "prod", username="me@x.eu") == f"python scripts/bootstrap_credentials.py {command}"


def test_the_dead_credentials_message_survives_redaction() -> None:
    """The report passes through the redactor: no "token: value" shape may eat the advice."""
    for mode in CredentialsMode:
        creds = ProviderCredentials(access_token="at", declared_mode=mode, username="me@x.eu")
        message = dead_credentials_message(creds, "prod", "GoPro refused the refresh_token grant (invalid_grant)")
        assert redact(message) == message, mode
        assert f'credentials mode "{mode.label}"' in message
        assert fix_command(mode, "prod", username="me@x.eu") in message
