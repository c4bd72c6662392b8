"""Token grants and API authentication, over real HTTP: the provider's auth code is tested against these rules."""

from __future__ import annotations

import pytest
import requests

from devtools.gopro_simulator import ACCEPT_HEADER, GoProSimulator, token_fingerprint
from tests.fixtures.simulator import SimulatorFactory
from tests.simulator.helpers import TIMEOUT, api_headers, search, token_request

pytestmark = pytest.mark.integration


def test_password_grant_answers_the_documented_fields(simulator: GoProSimulator) -> None:
    creds = simulator.credentials
    answer = token_request(simulator, grant_type="password", username=creds.username, password=creds.password)
    assert answer.status_code == 200
    body = answer.json()
    assert {"access_token", "expires_in", "refresh_token", "resource_owner_id"} <= body.keys()
    assert body["resource_owner_id"] == creds.user_id
    assert body["expires_in"] == simulator.config.access_token_ttl
    assert body["refresh_token"] == creds.refresh_token
    assert search(simulator, token=body["access_token"], per_page=1).status_code == 200


def test_refresh_grant_issues_a_working_access_token(simulator: GoProSimulator) -> None:
    answer = token_request(
        simulator, grant_type="refresh_token", refresh_token=simulator.credentials.refresh_token
    )
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    assert simulator.credentials.access_token == token
    assert search(simulator, token=token, per_page=1).status_code == 200


@pytest.mark.parametrize(
    ("client_id", "client_secret"), [("wrong", None), (None, "wrong"), ("", ""), ("absent", "absent")]
)
def test_wrong_or_missing_client_credential_is_invalid_client(
    simulator: GoProSimulator, client_id: str | None, client_secret: str | None
) -> None:
    creds = simulator.credentials
    form = {
        "grant_type": "refresh_token",
        "refresh_token": creds.refresh_token,
        "client_id": creds.client_id if client_id is None else client_id,
        "client_secret": creds.client_secret if client_secret is None else client_secret,
    }
    if client_id == "absent":
        del form["client_id"], form["client_secret"]
    answer = requests.post(f"{simulator.base_url}/v1/oauth2/token", data=form, timeout=TIMEOUT)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_configured_client_credentials_are_used(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(client_id="my-id", client_secret="my-secret", refresh_token="my-refresh")
    assert (sim.credentials.client_id, sim.credentials.client_secret) == ("my-id", "my-secret")
    assert token_request(sim, grant_type="refresh_token", refresh_token="my-refresh").status_code == 200


def test_bad_password_unknown_refresh_token_and_unknown_grant_are_refused(simulator: GoProSimulator) -> None:
    bad_password = token_request(simulator, grant_type="password", username="rider@example.com", password="nope")
    assert (bad_password.status_code, bad_password.json()["error"]) == (400, "invalid_grant")
    unknown = token_request(simulator, grant_type="refresh_token", refresh_token="sim-rt-unknown")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")
    other = token_request(simulator, grant_type="client_credentials")
    assert (other.status_code, other.json()["error"]) == (400, "unsupported_grant_type")


def test_token_endpoint_wants_a_form(simulator: GoProSimulator) -> None:
    creds = simulator.credentials
    payload = {"grant_type": "refresh_token", "client_id": creds.client_id, "client_secret": creds.client_secret}
    answer = requests.post(f"{simulator.base_url}/v1/oauth2/token", json=payload, timeout=TIMEOUT)
    assert answer.status_code == 400


def test_blacklisted_refresh_token_from_config_with_configurable_status(gopro_sim: SimulatorFactory) -> None:
    for status in (400, 401):
        sim = gopro_sim(refresh_token="revoked", blacklisted_refresh_tokens=("revoked",), blacklist_status=status)
        answer = token_request(sim, grant_type="refresh_token", refresh_token="revoked")
        assert answer.status_code == status
        assert answer.json()["error"] == "token_blacklisted"


def test_blacklisting_the_current_refresh_token_at_runtime(simulator: GoProSimulator) -> None:
    refresh = simulator.credentials.refresh_token
    assert token_request(simulator, grant_type="refresh_token", refresh_token=refresh).status_code == 200
    simulator.faults.blacklist_refresh_token()
    answer = token_request(simulator, grant_type="refresh_token", refresh_token=refresh)
    assert answer.status_code == 401
    assert answer.json()["error"] == "token_blacklisted"


def test_rotating_refresh_tokens_retire_the_old_one(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(rotate_refresh_tokens=True)
    first = sim.credentials.refresh_token
    answer = token_request(sim, grant_type="refresh_token", refresh_token=first)
    second = answer.json()["refresh_token"]
    assert second != first
    assert sim.credentials.refresh_token == second
    reused = token_request(sim, grant_type="refresh_token", refresh_token=first)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert token_request(sim, grant_type="refresh_token", refresh_token=second).status_code == 200


def test_without_rotation_the_refresh_token_stays(simulator: GoProSimulator) -> None:
    refresh = simulator.credentials.refresh_token
    for _ in range(2):
        answer = token_request(simulator, grant_type="refresh_token", refresh_token=refresh)
        assert answer.json()["refresh_token"] == refresh


def test_api_accepts_bearer_or_web_cookies_and_refuses_anything_else(simulator: GoProSimulator) -> None:
    url = f"{simulator.base_url}/media/search"
    creds = simulator.credentials
    cookies = {"gp_access_token": creds.access_token, "gp_user_id": creds.user_id}
    ok = requests.get(url, headers={"Accept": ACCEPT_HEADER}, cookies=cookies, timeout=TIMEOUT)
    assert ok.status_code == 200
    wrong_user = {"gp_access_token": creds.access_token, "gp_user_id": "someone-else"}
    assert (
        requests.get(url, headers={"Accept": ACCEPT_HEADER}, cookies=wrong_user, timeout=TIMEOUT).status_code
        == 401
    )
    assert requests.get(url, headers={"Accept": ACCEPT_HEADER}, timeout=TIMEOUT).status_code == 401
    assert search(simulator, token="sim-at-forged").status_code == 401


def test_expiring_access_tokens_now_gives_401_until_refreshed(simulator: GoProSimulator) -> None:
    old = simulator.credentials.access_token
    simulator.faults.expire_access_tokens()
    refused = search(simulator, token=old)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert "WWW-Authenticate" in refused.headers
    fresh = token_request(simulator, grant_type="refresh_token", refresh_token=simulator.credentials.refresh_token)
    assert search(simulator, token=fresh.json()["access_token"]).status_code == 200
    assert search(simulator, token=old).status_code == 401


def test_access_tokens_expire_with_the_simulated_clock(simulator: GoProSimulator) -> None:
    token = simulator.credentials.access_token
    simulator.advance_clock(simulator.config.access_token_ttl - 5)
    assert search(simulator, token=token).status_code == 200
    simulator.advance_clock(10)
    assert search(simulator, token=token).status_code == 401


def test_initial_access_token_can_start_expired(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(initial_access_token_expired=True)
    assert search(sim).status_code == 401
    assert search(sim, token=sim.issue_access_token()).status_code == 200


def test_request_log_and_verbose_output_never_hold_token_values(
    gopro_sim: SimulatorFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = gopro_sim(log_requests=True)
    creds = sim.credentials
    token_request(sim, grant_type="password", username=creds.username, password=creds.password)
    answer = token_request(sim, grant_type="refresh_token", refresh_token=creds.refresh_token)
    access = answer.json()["access_token"]
    search(sim, token=access, per_page=1)
    requests.get(
        f"{sim.base_url}/media/search",
        headers={"Accept": ACCEPT_HEADER},
        cookies={"gp_access_token": access},
        timeout=TIMEOUT,
    )
    output = capsys.readouterr()
    logged = repr(sim.requests) + output.out + output.err
    for secret in (creds.client_secret, creds.refresh_token, creds.password, creds.access_token, access):
        assert secret not in logged
    assert "[gopro-sim] GET /media/search -> 200" in output.err
    search_records = sim.requests_to("search")
    assert [r.auth for r in search_records] == [
        f"bearer:{token_fingerprint(access)}",
        f"cookie:{token_fingerprint(access)}",
    ]
    assert all(r.headers.get("Authorization") in (None, "<redacted>") for r in sim.requests)
    assert [r.grant_type for r in sim.requests_to("token")] == ["password", "refresh_token"]


def test_a_password_sign_in_after_a_revoked_refresh_token_starts_a_new_grant(simulator: GoProSimulator) -> None:
    creds = simulator.credentials
    simulator.faults.blacklist_refresh_token()
    answer = token_request(simulator, grant_type="password", username=creds.username, password=creds.password)
    assert answer.status_code == 200
    fresh = answer.json()["refresh_token"]
    assert fresh != creds.refresh_token
    assert token_request(simulator, grant_type="refresh_token", refresh_token=fresh).status_code == 200
    revoked = token_request(simulator, grant_type="refresh_token", refresh_token=creds.refresh_token)
    assert revoked.json()["error"] == "token_blacklisted"


def test_media_user_names_the_signed_in_user_and_needs_a_valid_token(simulator: GoProSimulator) -> None:
    url = f"{simulator.base_url}/media/user"
    creds = simulator.credentials
    answer = requests.get(url, headers=api_headers(simulator), timeout=TIMEOUT)
    assert (answer.status_code, answer.json()["id"]) == (200, creds.user_id)
    cookies = {"gp_access_token": creds.access_token, "gp_user_id": creds.user_id}
    assert requests.get(url, cookies=cookies, timeout=TIMEOUT).status_code == 200
    simulator.faults.expire_access_tokens()
    assert requests.get(url, headers=api_headers(simulator), timeout=TIMEOUT).status_code == 401
    assert simulator.requests_to("user")


@pytest.mark.parametrize("endpoint", [None, "token", "search", "user"])
def test_the_block_fault_answers_cloudfronts_html_403(simulator: GoProSimulator, endpoint: str | None) -> None:
    simulator.faults.block(count=1, endpoint=endpoint)
    creds = simulator.credentials
    if endpoint in (None, "token"):
        answer = token_request(simulator, grant_type="refresh_token", refresh_token=creds.refresh_token)
    elif endpoint == "search":
        answer = search(simulator, per_page=1)
    else:
        answer = requests.get(f"{simulator.base_url}/media/user", headers=api_headers(simulator), timeout=TIMEOUT)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "Request blocked" in answer.text
    assert search(simulator, per_page=1).status_code == 200, "count=1: the next call goes through"


@pytest.mark.parametrize("status", [406, 410])
def test_the_vendor_refusal_fault_answers_406_or_410(simulator: GoProSimulator, status: int) -> None:
    simulator.faults.refuse_vendor_version(status, count=None, endpoint="search")
    answer = search(simulator, per_page=1)
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError, match="406 or 410"):
        simulator.faults.refuse_vendor_version(403)
