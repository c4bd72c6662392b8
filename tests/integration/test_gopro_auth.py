"""GoPro's token endpoint and the preflight call, over real HTTP against the simulator: re-sign-in after a revoked
refresh token only with a remembered password, and the typed refusals (406/410, an HTML 403)."""

from __future__ import annotations

import pytest

from devtools.gopro_simulator import GoProSimulator
from pipeline.config import EnvVar, Settings
from pipeline.credentials.lock import ThreadRefreshLock
from pipeline.credentials.model import CredentialsMode, ProviderCredentials
from pipeline.credentials.store import MemoryStore
from pipeline.credentials.tokens import TokenManager
from pipeline.providers.errors import ApiChanged, AuthError, Blocked
from pipeline.providers.gopro.auth import GoProAuth
from pipeline.providers.gopro.provider import GoProProvider, build, make_session
from pipeline.retry import RetryPolicy

pytestmark = pytest.mark.integration


def auth_for(sim: GoProSimulator) -> GoProAuth:
    return GoProAuth(auth_url=sim.base_url, session=make_session(), timeout=(2, 5), policy=RetryPolicy())


def signed_in(sim: GoProSimulator, *, password: str | None) -> ProviderCredentials:
    creds = sim.credentials
    return ProviderCredentials(
        access_token=creds.access_token,
        refresh_token=creds.refresh_token,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        declared_mode=CredentialsMode.SIGN_IN,
        username=creds.username,
        password=password,
    )


def provider_with(sim: GoProSimulator, creds: ProviderCredentials, environment: str = "prod") -> GoProProvider:
    settings = Settings.from_env({**sim.env(), EnvVar.RETRY_MAX_ATTEMPTS: "2", EnvVar.ENVIRONMENT: environment})

    def tokens(_settings: Settings, refresher) -> TokenManager:  # type: ignore[no-untyped-def]
        return TokenManager(MemoryStore(creds), ThreadRefreshLock(), refresher, environment=environment)

    return build(settings, tokens, sleep=lambda _s: None)


def test_a_revoked_refresh_token_is_replaced_by_a_sign_in_with_the_remembered_password(gopro_sim) -> None:
    sim = gopro_sim(videos=1, photos=0)
    sim.faults.blacklist_refresh_token()
    fresh = auth_for(sim).refresh(signed_in(sim, password=sim.credentials.password))
    assert [(r.grant_type, r.status) for r in sim.requests_to("token")] == [
        ("refresh_token", 401),
        ("password", 200),
    ]
    assert fresh.access_token == sim.credentials.access_token
    assert fresh.refresh_token == sim.credentials.refresh_token
    assert (fresh.mode, fresh.password) == (CredentialsMode.SIGN_IN, sim.credentials.password)


def test_an_invalid_grant_is_replaced_too(gopro_sim) -> None:
    sim = gopro_sim(videos=1, photos=0)
    creds = signed_in(sim, password=sim.credentials.password)
    from dataclasses import replace

    fresh = auth_for(sim).refresh(replace(creds, refresh_token="sim-rt-unknown"))  # 400 invalid_grant
    assert [r.grant_type for r in sim.requests_to("token")] == ["refresh_token", "password"]
    assert fresh.access_token == sim.credentials.access_token


def test_without_a_remembered_password_the_refusal_stands(gopro_sim) -> None:
    sim = gopro_sim(videos=1, photos=0)
    sim.faults.blacklist_refresh_token()
    with pytest.raises(AuthError) as caught:
        auth_for(sim).refresh(signed_in(sim, password=None))
    assert (caught.value.reauth_required, caught.value.code) == (True, "token_blacklisted")
    assert [r.grant_type for r in sim.requests_to("token")] == ["refresh_token"]


def test_a_wrong_client_is_never_answered_with_a_password_sign_in(gopro_sim) -> None:
    sim = gopro_sim(videos=1, photos=0)
    from dataclasses import replace

    creds = replace(signed_in(sim, password=sim.credentials.password), client_secret="wrong")
    with pytest.raises(AuthError) as caught:
        auth_for(sim).refresh(creds)
    assert caught.value.code == "invalid_client"
    assert [r.grant_type for r in sim.requests_to("token")] == ["refresh_token"]


def test_a_remembered_password_that_was_changed_says_so(gopro_sim) -> None:
    sim = gopro_sim(videos=1, photos=0)
    creds = signed_in(sim, password="the-old-password")
    sim.faults.blacklist_refresh_token()
    with pytest.raises(AuthError, match=r"remembered password too.*two-factor") as caught:
        auth_for(sim).refresh(creds)
    assert caught.value.reauth_required
    assert "the-old-password" not in str(caught.value)


def test_the_preflight_falls_back_to_a_one_item_search_when_media_user_is_not_served(gopro_sim) -> None:
    """`/media/user` is confirmed by one client only: its refusal alone must not stop a night."""
    sim = gopro_sim(videos=2, photos=0)
    sim.faults.refuse_vendor_version(410, count=None, endpoint="user")
    provider = provider_with(sim, signed_in(sim, password=None))
    provider.check_credentials()
    (search,) = sim.requests_to("search")
    assert search.query["per_page"] == ["1"]


def test_the_preflight_says_the_api_changed_only_when_the_search_refuses_too(gopro_sim) -> None:
    sim = gopro_sim(videos=2, photos=0)
    sim.faults.refuse_vendor_version(406, count=None)
    with pytest.raises(ApiChanged, match="HTTP 406") as caught:
        provider_with(sim, signed_in(sim, password=None)).check_credentials()
    assert caught.value.status == 406
    assert [r.endpoint for r in sim.requests] == ["user", "search"], "never retried"


def test_an_html_403_from_the_token_host_is_blocked_not_a_refused_token(gopro_sim) -> None:
    sim = gopro_sim(videos=1, photos=0)
    sim.faults.block(count=None, endpoint="token")
    with pytest.raises(Blocked, match="token host answered an HTML 403"):
        auth_for(sim).refresh(signed_in(sim, password=sim.credentials.password))
    assert len(sim.requests_to("token")) == 1, "neither retried nor answered with a sign-in"


def test_a_dead_cookie_is_reported_with_its_mode_and_command(gopro_sim) -> None:
    sim = gopro_sim(videos=1, photos=0)
    cookie = ProviderCredentials(
        access_token=sim.issue_access_token(), user_id=sim.credentials.user_id, declared_mode="web_cookie"
    )
    provider = provider_with(sim, cookie, environment="staging")
    provider.check_credentials()
    sim.faults.expire_access_tokens()
    with pytest.raises(AuthError) as caught:
        provider.check_credentials()
    message = str(caught.value)
    assert 'credentials mode "web cookie (gp_access_token)"' in message
    assert "python scripts/bootstrap_credentials.py --env staging --cookie-from-stdin --user-id" in message
    assert sim.requests_to("token") == []
