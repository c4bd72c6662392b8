"""Keeps a valid access token at hand for one provider, refreshing it at most once across all workers."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from pipeline import resources
from pipeline.credentials.lock import RefreshLock
from pipeline.credentials.model import ProviderCredentials
from pipeline.credentials.store import CredentialStore
from pipeline.providers.errors import AuthError, ProviderUnavailable

log = logging.getLogger(__name__)

# Refresh with the provider: given the current credentials, return them with new tokens (or raise AuthError).
Refresher = Callable[[ProviderCredentials], ProviderCredentials]

REAUTH_HINT = "sign in again with scripts/bootstrap_credentials.py (see docs/runbook.md, authentication failure)"


class TokenManager:
    def __init__(
        self,
        store: CredentialStore,
        lock: RefreshLock,
        refresher: Refresher,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        lock_ttl_seconds: float = 60.0,
        wait_timeout_seconds: float = 90.0,
        poll_seconds: float = 0.5,
        environment: str = resources.DEFAULT_ENVIRONMENT,
    ) -> None:
        """`environment`: the deployment these credentials belong to, named in the fix command of a failure."""
        self.environment = environment
        self._store = store
        self._lock = lock
        self._refresher = refresher
        self._clock = clock
        self._sleep = sleep
        self._lock_ttl = lock_ttl_seconds
        self._wait_timeout = wait_timeout_seconds
        self._poll = poll_seconds
        self._owner = f"{uuid.uuid4().hex[:12]}"
        self._local = threading.Lock()
        self._current: ProviderCredentials | None = None

    @property
    def credentials(self) -> ProviderCredentials:
        with self._local:
            if self._current is None:
                self._current = self._store.load().credentials
            return self._current

    def access_token(self) -> str:
        token = self.credentials.access_token
        if token:
            return token
        return self.refresh(stale_token=None)

    def ensure_valid(self, min_validity_seconds: float) -> str:
        """The access token, refreshed first when it ends within `min_validity_seconds`.

        The margin is capped at half the token's own lifetime (`expires_at - updated_at`): a token GoPro issues for
        less than the margin would otherwise be refreshed again on every call, although a refresh cannot make it
        last longer (the night's preflight and the listing both ask). Half the lifetime keeps DG's habit of
        refreshing well before the end.
        """
        creds = self.credentials
        if creds.expires_at is not None and creds.updated_at is not None and creds.expires_at > creds.updated_at:
            min_validity_seconds = min(min_validity_seconds, (creds.expires_at - creds.updated_at) / 2)
        if creds.expires_within(min_validity_seconds, self._clock()):
            if not creds.renewable:
                if creds.expires_within(0, self._clock()):
                    raise AuthError(
                        f"the access token has expired and cannot be refreshed; {REAUTH_HINT}",
                        reauth_required=True,
                    )
                log.warning("access token expires within %.0fs and cannot be refreshed", min_validity_seconds)
                return str(creds.access_token)
            return self.refresh(stale_token=creds.access_token)
        return str(creds.access_token)

    def refresh(self, stale_token: str | None) -> str:
        """Replaces `stale_token`: adopts a newer stored token if another worker refreshed, else refreshes.

        Exactly one caller across all workers performs the refresh; the others poll the store until the token
        changes, so a rotating refresh token is never used twice.
        """
        deadline = self._clock() + self._wait_timeout
        while True:
            stored = self._store.load().credentials
            if self._replaces(stored, stale_token):
                return self._adopt(stored)
            if not stored.renewable:
                raise AuthError(
                    f"the provider refused the access token and it cannot be refreshed; {REAUTH_HINT}",
                    reauth_required=True,
                )
            # One owner per thread: the locks let an owner re-enter, and two threads of one process (the local
            # runtime's consumers share one App) must not both refresh with the same refresh token.
            owner = f"{self._owner}-{threading.get_ident()}"
            if self._lock.acquire(owner, self._lock_ttl):
                try:
                    # Someone may have finished a refresh between our load and the lock: check again.
                    stored = self._store.load().credentials
                    if self._replaces(stored, stale_token):
                        return self._adopt(stored)
                    log.info("refreshing the provider access token")
                    fresh = self._refresher(stored)
                    self._store.save(fresh)
                    return self._adopt(fresh)
                finally:
                    self._lock.release(owner)
            if self._clock() >= deadline:
                raise ProviderUnavailable("timed out waiting for another worker to refresh the access token")
            self._sleep(self._poll)

    def _replaces(self, stored: ProviderCredentials, stale_token: str | None) -> bool:
        """True when the store already holds a different, unexpired token (another worker refreshed)."""
        fresh = not stored.expires_within(0, self._clock())
        return bool(stored.access_token) and stored.access_token != stale_token and fresh

    def _adopt(self, creds: ProviderCredentials) -> str:
        with self._local:
            self._current = creds
        return str(creds.access_token)
