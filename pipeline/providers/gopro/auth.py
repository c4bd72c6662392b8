"""GoPro's OAuth token endpoint: the refresh grant of every night, and the password grant of a sign-in.

The client id and secret are always the user's own configuration; nothing here ships one. When GoPro revokes a
refresh token (`token_blacklisted`, `invalid_grant`; rclone saw it happen within days) and the user chose
`--remember-password`, `refresh` signs in again with the stored password, as rclone's backend does; without a
remembered password the refusal is an `AuthError` a person must fix (the authentication alarm).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import requests

from pipeline.credentials.model import CredentialsMode, ProviderCredentials
from pipeline.credentials.tokens import REAUTH_HINT
from pipeline.providers.errors import AuthError, ProviderResponseError, ProviderUnavailable, RateLimited
from pipeline.providers.gopro import api
from pipeline.providers.gopro.http import decode_json, request_headers
from pipeline.providers.gopro.parsing import parse_token_answer
from pipeline.providers.http_status import TRANSPORT_ERRORS, raise_for_refusal, raise_for_status, unavailable
from pipeline.retry import RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

# Answers after which only a new grant helps: never retried as such, always alerted if nothing else works.
REAUTH_ERRORS = {"invalid_grant", "token_blacklisted", "invalid_client", "unauthorized_client", "invalid_token"}
# Refusals of a refresh token that a password sign-in can get past (not `invalid_client`: a wrong client id or
# secret fails the password grant just the same).
RESIGN_IN_ERRORS = frozenset({"token_blacklisted", "invalid_grant", "invalid_token"})


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
        """New tokens for `creds`: the refresh grant, or a sign-in with the remembered password when GoPro revoked
        the refresh token (or there is none). The result keeps the mode, username and remembered password."""
        if not creds.refreshable:
            if creds.can_sign_in:
                log.warning("no refresh token is stored; signing in again with the remembered password")
                return self._sign_in_again(creds)
            raise AuthError("these credentials hold no refresh token and client credentials", reauth_required=True)
        form = {
            "grant_type": "refresh_token",
            "client_id": str(creds.client_id),
            "client_secret": str(creds.client_secret),
            "refresh_token": str(creds.refresh_token),
        }
        try:
            return self._grant(form, creds)
        except AuthError as exc:
            if exc.code not in RESIGN_IN_ERRORS or not creds.can_sign_in:
                raise
            log.warning("GoPro refused the refresh token (%s); signing in with the remembered password", exc.code)
            return self._sign_in_again(creds)

    def sign_in(
        self,
        *,
        username: str,
        password: str,
        client_id: str,
        client_secret: str,
        remember_password: bool = False,
    ) -> ProviderCredentials:
        """The password grant. The password is kept in the result only with `remember_password`."""
        base = ProviderCredentials(
            client_id=client_id,
            client_secret=client_secret,
            declared_mode=CredentialsMode.SIGN_IN,
            username=username,
            password=password if remember_password else None,
        )
        return self._grant(self._password_form(username, password, client_id, client_secret), base)

    def _sign_in_again(self, creds: ProviderCredentials) -> ProviderCredentials:
        form = self._password_form(
            str(creds.username), str(creds.password), str(creds.client_id), str(creds.client_secret)
        )
        # Not the revoked refresh token: the grant's answer brings a new one (or none, and then none is kept).
        base = replace(creds, refresh_token=None, access_token=None, expires_at=None)
        try:
            return self._grant(form, base)
        except AuthError as exc:
            raise AuthError(
                f"GoPro refused the remembered password too ({exc.code or 'refused'}): the password changed, or "
                f"the account now needs two-factor or social sign-in; {REAUTH_HINT}",
                reauth_required=True,
                code=exc.code,
            ) from None

    @staticmethod
    def _password_form(username: str, password: str, client_id: str, client_secret: str) -> dict[str, str]:
        return {
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": api.PASSWORD_SCOPE,
            "username": username,
            "password": password,
        }

    def _grant(self, form: dict[str, str], base: ProviderCredentials) -> ProviderCredentials:
        def attempt() -> ProviderCredentials:
            try:
                response = self._session.post(
                    self._url,
                    data=form,
                    headers=request_headers(),
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except TRANSPORT_ERRORS as exc:
                raise unavailable(exc, "token endpoint") from None
            raise_for_refusal(response, "token endpoint", host="GoPro's token host")
            if response.status_code in (400, 401, 403):
                error = _error_code(response)
                if error in REAUTH_ERRORS or response.status_code == 401:
                    raise AuthError(
                        f"GoPro refused the {form['grant_type']} grant ({error or response.status_code}); "
                        f"{REAUTH_HINT}",
                        reauth_required=True,
                        code=error or None,
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
