"""scripts/bootstrap_credentials.py against moto and the GoPro simulator, in its three modes; it never prints a
token, a client secret or a password, whatever happens."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devtools.gopro_simulator import GoProSimulator
from pipeline.config import EnvVar
from pipeline.credentials.factory import store_for
from pipeline.providers.gopro.config import GoProEnv
from scripts import _bootstrap_credentials as bootstrap_credentials
from tests.scripts.conftest import ENV, NAMES, LocalStack, Result

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim(gopro_sim: Any, stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> GoProSimulator:
    simulator = gopro_sim(videos=1, photos=0, video_size=1000, rotate_refresh_tokens=True)
    monkeypatch.setenv(GoProEnv.API_URL, simulator.base_url)
    monkeypatch.setenv(GoProEnv.AUTH_URL, simulator.base_url)
    monkeypatch.setenv(EnvVar.RETRY_MAX_ATTEMPTS, "1")
    stack.provision()
    return simulator


def secrets_of(sim: GoProSimulator, *extra: str) -> list[str]:
    creds = sim.credentials
    return [creds.access_token, creds.refresh_token, creds.client_secret, creds.password, *extra]


def assert_nothing_secret(result: Result | subprocess.CompletedProcess, secrets: list[str]) -> None:
    text = result.out + result.err if isinstance(result, Result) else result.stdout + result.stderr
    for value in secrets:
        assert value not in text


def with_client_env(sim: GoProSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GoProEnv.CLIENT_ID, sim.credentials.client_id)
    monkeypatch.setenv(GoProEnv.CLIENT_SECRET, sim.credentials.client_secret)


def call(stack: LocalStack, capsys: pytest.CaptureFixture[str], argv: list[str], password: str = "") -> Result:
    from scripts.cli.app import run_as_script

    capsys.readouterr()
    code = run_as_script(bootstrap_credentials.NAME, stack.args(*argv), password_prompt=lambda _prompt: password)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def test_sign_in_stores_refreshable_credentials_and_prints_no_secret(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    with_client_env(sim, monkeypatch)
    before = secrets_of(sim)
    result = call(stack, capsys, ["--username", sim.credentials.username], password=sim.credentials.password)
    assert result.code == 0, result.err
    stored = stack.stored_credentials()
    assert stored.refreshable
    assert stored.access_token == sim.credentials.access_token
    assert stored.refresh_token == sim.credentials.refresh_token
    assert stored.user_id == sim.credentials.user_id
    assert f"secret {NAMES.credentials_secret}" in result.out
    assert "mode sign_in" in result.out
    assert stored.mode == "sign_in"
    assert stored.username == sim.credentials.username
    assert stored.password is None, "the password is stored only with --remember-password"
    assert "until GoPro revokes the refresh token" in result.out
    assert "--username rider@example.com --remember-password" in result.out  # the command for that day
    assert [r.grant_type for r in sim.requests_to("token")] == ["password"]
    assert sim.requests_to("user"), "the new credentials were tried before being stored"
    assert_nothing_secret(result, [*before, *secrets_of(sim)])


def test_a_wrong_password_stores_nothing_and_does_not_echo_it(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    with_client_env(sim, monkeypatch)
    result = call(stack, capsys, ["--username", sim.credentials.username], password="hunter2-wrong-password")
    assert result.code == 6  # GoPro credentials refused
    assert result.err.count("\n") == 1
    assert "authentication failed" in result.err
    assert_nothing_secret(result, ["hunter2-wrong-password", *secrets_of(sim)])
    secrets = stack.client("secretsmanager").list_secrets()["SecretList"]
    assert secrets == []


def test_a_refresh_token_from_stdin_is_exchanged_and_the_new_one_stored(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    with_client_env(sim, monkeypatch)
    pasted = sim.credentials.refresh_token
    monkeypatch.setattr(sys, "stdin", io.StringIO(pasted + "\n"))
    result = call(stack, capsys, ["--refresh-token-from-stdin"])
    assert result.code == 0, result.err
    stored = stack.stored_credentials()
    # The simulator rotates refresh tokens: the pasted one is spent, the stored one is the live one.
    assert stored.refresh_token == sim.credentials.refresh_token != pasted
    assert_nothing_secret(result, [pasted, *secrets_of(sim)])


def test_an_access_token_from_stdin_is_stored_alone_with_its_expiry(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    token = sim.issue_access_token()
    monkeypatch.setattr(sys, "stdin", io.StringIO(token + "\n"))
    result = call(stack, capsys, ["--access-token-from-stdin", "--user-id", sim.credentials.user_id])
    assert result.code == 0, result.err
    stored = stack.stored_credentials()
    assert (stored.access_token, stored.refresh_token, stored.mode) == (token, None, "web_cookie")
    assert stored.user_id == sim.credentials.user_id
    assert "lasts about one night" in result.out
    assert "--cookie-from-stdin" in result.out
    assert_nothing_secret(result, [token, *secrets_of(sim)])


def test_an_existing_secret_gets_a_new_version(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    first = sim.issue_access_token()
    stack.client("secretsmanager").create_secret(
        Name=NAMES.credentials_secret, SecretString='{"access_token": "x"}'
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(first))
    result = call(stack, capsys, ["--access-token-from-stdin", "--no-verify"])
    assert result.code == 0, result.err
    assert stack.stored_credentials().access_token == first


def test_client_credentials_are_never_defaulted(sim: GoProSimulator, stack: LocalStack, capsys) -> None:
    result = call(stack, capsys, ["--username", "someone@example.com"], password="pw-never-sent")
    assert result.code == 6  # GoPro credentials missing
    assert result.err.count("\n") == 1
    assert "a client id and secret are needed" in result.err
    assert sim.requests_to("token") == []


def test_a_jwt_expiry_is_read_and_an_expired_one_refused(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    def jwt(exp: float) -> str:
        body = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
        return f"eyJhbGciOiJIUzI1NiJ9.{body}.c2lnbmF0dXJlLXZhbHVl"

    assert bootstrap_credentials.jwt_expiry(jwt(2_000_000_000)) == 2_000_000_000
    monkeypatch.setattr(sys, "stdin", io.StringIO(jwt(time.time() - 60)))
    result = call(stack, capsys, ["--access-token-from-stdin", "--no-verify"])
    assert result.code == 2
    assert "already expired" in result.err


def test_the_secret_is_written_under_the_downloaders_refresh_lock(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    """While a downloader holds the refresh lock, the bootstrap waits and then gives up rather than racing it."""
    monkeypatch.setattr(bootstrap_credentials, "LOCK_WAIT_SECONDS", 0.3)
    _store, lock, _ = store_for(stack.context().settings)  # the downloaders' lock, as the factory names it
    assert lock.acquire("downloader", 60)
    monkeypatch.setattr(sys, "stdin", io.StringIO(sim.issue_access_token()))
    result = call(stack, capsys, ["--access-token-from-stdin", "--no-verify"])
    assert result.code == 1
    assert "holds the credentials lock" in result.err
    assert stack.client("secretsmanager").list_secrets()["SecretList"] == []
    lock.release("downloader")


def test_runs_as_a_file_with_a_piped_token_even_verbose(sim: GoProSimulator, stack: LocalStack) -> None:
    token = sim.issue_access_token()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOPRO_CLIENT", "GOPRO_REFRESH"))}
    done = subprocess.run(
        [
            sys.executable,
            "scripts/bootstrap_credentials.py",
            "--access-token-from-stdin",
            "-v",
            "--env",
            ENV,
            "--endpoint-url",
            stack.aws.endpoint_url,
        ],
        cwd=REPO,
        env=env,
        input=token + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "trying the credentials with the night's preflight call" in done.stderr  # -v logs, and they stay clean
    assert stack.stored_credentials().access_token == token
    assert_nothing_secret(done, [token, *secrets_of(sim)])


def test_remember_password_stores_it_so_the_pipeline_can_sign_in_again(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    with_client_env(sim, monkeypatch)
    result = call(
        stack,
        capsys,
        ["--username", sim.credentials.username, "--remember-password"],
        password=sim.credentials.password,
    )
    assert result.code == 0, result.err
    stored = stack.stored_credentials()
    assert (stored.mode, stored.password, stored.can_sign_in) == ("sign_in", sim.credentials.password, True)
    assert "survives unattended nights" in result.out
    assert_nothing_secret(result, secrets_of(sim))


def test_remember_password_needs_the_sign_in_mode(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(sim.issue_access_token()))
    result = call(stack, capsys, ["--cookie-from-stdin", "--remember-password"])
    assert result.code == 2
    assert "--remember-password goes with --username" in result.err
    assert stack.client("secretsmanager").list_secrets()["SecretList"] == []


def test_a_dead_cookie_is_refused_before_it_is_stored(
    sim: GoProSimulator, stack: LocalStack, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not-a-live-cookie\n"))
    result = call(stack, capsys, ["--cookie-from-stdin"])
    assert result.code == 6  # GoPro credentials refused
    assert "web cookie" in result.err
    assert "--cookie-from-stdin" in result.err
    assert stack.client("secretsmanager").list_secrets()["SecretList"] == []
