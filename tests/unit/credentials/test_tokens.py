import threading

import pytest

from pipeline.credentials.lock import ThreadRefreshLock
from pipeline.credentials.model import CredentialsError, ProviderCredentials
from pipeline.credentials.store import MemoryStore
from pipeline.credentials.tokens import TokenManager
from pipeline.providers.errors import AuthError, ProviderUnavailable


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def refreshable(access: str = "at-1", expires_at: float | None = 1_000_100.0) -> ProviderCredentials:
    return ProviderCredentials(
        access_token=access, refresh_token="rt-1", client_id="cid", client_secret="csecret", expires_at=expires_at
    )


def counting_refresher(clock: Clock, delay: threading.Event | None = None):
    calls = {"n": 0}
    lock = threading.Lock()

    def refresher(creds: ProviderCredentials) -> ProviderCredentials:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if delay:
            delay.wait(2)
        return creds.with_tokens(
            access_token=f"at-new-{n}", expires_in=3600, refresh_token=f"rt-{n + 1}", user_id="u", now=clock()
        )

    return refresher, calls


def test_ensure_valid_refreshes_inside_the_margin_only() -> None:
    clock = Clock()
    refresher, calls = counting_refresher(clock)
    store = MemoryStore(refreshable(expires_at=clock.now + 50_000))
    tokens = TokenManager(store, ThreadRefreshLock(clock), refresher, clock=clock)
    assert tokens.ensure_valid(3600) == "at-1"
    assert calls["n"] == 0
    assert tokens.ensure_valid(86_400) == "at-new-1"
    assert calls["n"] == 1
    assert store.load().credentials.refresh_token == "rt-2"  # the rotated refresh token was saved


def test_five_workers_with_one_stale_token_refresh_exactly_once() -> None:
    clock = Clock()
    release = threading.Event()
    refresher, calls = counting_refresher(clock, delay=release)
    store = MemoryStore(refreshable())
    lock = ThreadRefreshLock(clock)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        # Each worker is its own TokenManager, as each Lambda container would be.
        manager = TokenManager(store, lock, refresher, clock=clock, sleep=lambda _s: release.wait(0.01))
        try:
            results.append(manager.refresh(stale_token="at-1"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert errors == []
    assert calls["n"] == 1
    assert results == ["at-new-1"] * 5


def test_a_newer_stored_token_is_adopted_without_refreshing() -> None:
    clock = Clock()
    refresher, calls = counting_refresher(clock)
    store = MemoryStore(refreshable(access="at-1"))
    tokens = TokenManager(store, ThreadRefreshLock(clock), refresher, clock=clock)
    assert tokens.access_token() == "at-1"
    store.save(refreshable(access="at-from-elsewhere"))
    assert tokens.refresh(stale_token="at-1") == "at-from-elsewhere"
    assert calls["n"] == 0


def test_a_pasted_access_token_cannot_be_refreshed_and_says_so() -> None:
    clock = Clock()
    refresher, calls = counting_refresher(clock)
    store = MemoryStore(ProviderCredentials(access_token="cookie-token", expires_at=clock.now - 1))
    tokens = TokenManager(store, ThreadRefreshLock(clock), refresher, clock=clock)
    with pytest.raises(AuthError) as caught:
        tokens.ensure_valid(0)
    assert caught.value.reauth_required
    assert "bootstrap_credentials" in str(caught.value)
    with pytest.raises(AuthError):
        tokens.refresh(stale_token="cookie-token")
    assert calls["n"] == 0


def test_waiting_for_a_stuck_refresher_times_out() -> None:
    clock = Clock()
    refresher, _ = counting_refresher(clock)
    store = MemoryStore(refreshable())
    lock = ThreadRefreshLock(clock)
    assert lock.acquire("someone-else", ttl_seconds=10_000)

    def sleep(seconds: float) -> None:
        clock.now += seconds

    tokens = TokenManager(store, lock, refresher, clock=clock, sleep=sleep, wait_timeout_seconds=5)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        tokens.refresh(stale_token="at-1")


def test_credentials_json_round_trip_and_errors() -> None:
    creds = refreshable()
    again = ProviderCredentials.from_json(creds.to_json())
    assert again.refresh_token == "rt-1"
    assert again.expires_at == pytest.approx(creds.expires_at)
    assert "rt-1" not in repr(again)
    for bad in ("not json", "[]", '{"access_token": 5}', "{}", '{"access_token": "a", "expires_at": "soon"}'):
        with pytest.raises(CredentialsError) as caught:
            ProviderCredentials.from_json(bad)
        assert "rt-1" not in str(caught.value)


def test_the_margin_is_capped_at_half_a_short_lived_tokens_lifetime() -> None:
    """A token issued for an hour cannot be made to last 24 h: refreshing it on every call would not help."""
    clock = Clock()
    refresher, calls = counting_refresher(clock)
    issued = ProviderCredentials(
        access_token="at-1",
        refresh_token="rt-1",
        client_id="cid",
        client_secret="csecret",
        expires_at=clock.now + 3600,
        updated_at=clock.now,
    )
    tokens = TokenManager(MemoryStore(issued), ThreadRefreshLock(clock), refresher, clock=clock)
    assert tokens.ensure_valid(86_400) == "at-1"
    clock.now += 1801  # past half its life: refreshed
    assert tokens.ensure_valid(86_400) == "at-new-1"
    assert calls["n"] == 1


def test_a_remembered_password_is_renewable_without_a_refresh_token() -> None:
    clock = Clock()
    refresher, calls = counting_refresher(clock)
    creds = ProviderCredentials(client_id="cid", client_secret="csecret", username="u@x.eu", password="pw")
    tokens = TokenManager(MemoryStore(creds), ThreadRefreshLock(clock), refresher, clock=clock)
    assert tokens.access_token() == "at-new-1"
    assert calls["n"] == 1
