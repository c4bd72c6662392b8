"""GoPro's OAuth token endpoint: the refresh grant the pipeline uses and the password grant of the first sign-in.

The client id and secret are always the user's own configuration (GoPro gates them); nothing here ships one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from pipeline.credentials.model import ProviderCredentials
from pipeline.credentials.tokens import REAUTH_HINT
from pipeline.providers.errors import AuthError, ProviderResponseError, ProviderUnavailable, RateLimited
from pipeline.providers.gopro import api
from pipeline.providers.gopro.http import decode_json
from pipeline.providers.gopro.parsing import parse_token_answer
from pipeline.providers.http_status import TRANSPORT_ERRORS, raise_for_status, unavailable
from pipeline.retry import RetryPolicy, call_with_retry

# Answers after which only a person signing in again helps: never retried, always alerted.
REAUTH_ERRORS = {"invalid_grant", "token_blacklisted", "invalid_client", "unauthorized_client", "invalid_token"}


class GoProAuth:
    def __init__(
        self,
        *,
        auth_url: str,
        session: requests.Session,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = f"{auth_url}{api.TOKEN_PATH}"
        self._session = session
        self._timeout = timeout
        self._policy = policy
        self._clock = clock
        self._sleep = sleep

    def refresh(self, creds: ProviderCredentials) -> ProviderCredentials:
        if not creds.refreshable:
            raise AuthError("these credentials hold no refresh token and client credentials", reauth_required=True)
        form = {
            "grant_type": "refresh_token",
            "client_id": str(creds.client_id),
            "client_secret": str(creds.client_secret),
            "refresh_token": str(creds.refresh_token),
        }
        return self._grant(form, creds)

    def sign_in(self, *, username: str, password: str, client_id: str, client_secret: str) -> ProviderCredentials:
        base = ProviderCredentials(client_id=client_id, client_secret=client_secret)
        form = {
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": api.PASSWORD_SCOPE,
            "username": username,
            "password": password,
        }
        return self._grant(form, base)

    def _grant(self, form: dict[str, str], base: ProviderCredentials) -> ProviderCredentials:
        def attempt() -> ProviderCredentials:
            try:
                response = self._session.post(self._url, data=form, timeout=self._timeout, allow_redirects=False)
            except TRANSPORT_ERRORS as exc:
                raise unavailable(exc, "token endpoint") from None
            if response.status_code in (400, 401, 403):
                error = _error_code(response)
                if error in REAUTH_ERRORS or response.status_code == 401:
                    raise AuthError(
                        f"GoPro refused the {form['grant_type']} grant ({error or response.status_code}); "
                        f"{REAUTH_HINT}",
                        reauth_required=True,
                    )
            raise_for_status(response, "token endpoint")
            payload = decode_json(response, "token endpoint")
            access, expires_in, refresh, user = parse_token_answer(payload, response.status_code)
            return base.with_tokens(
                access_token=access, expires_in=expires_in, refresh_token=refresh, user_id=user, now=self._clock()
            )

        return call_with_retry(
            attempt,
            policy=self._policy,
            # Not TransientResponseError: a token answer that is not JSON is reported at once, never re-granted.
            retry_on=(RateLimited, ProviderUnavailable),
            sleep=self._sleep,
            describe="token refresh",
        )


def _error_code(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return ""
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return payload["error"]
    return ""


__all__ = ["REAUTH_ERRORS", "GoProAuth", "ProviderResponseError"]
