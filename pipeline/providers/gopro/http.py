"""One HTTP exchange with GoPro, mapped onto the provider's typed errors, with bounded retries.

Policy: 406/410 → `ApiChanged` and an HTML 403 → `Blocked` (each its own alarm, never retried); 401 → refresh the
token once and try again; 429 → wait as `Retry-After` says; 5xx, resets and timeouts → bounded exponential
retries; anything else unexpected → `ProviderResponseError` with the status and a snippet. Every request names
the project in its `User-Agent` (GoPro's CDN blocks clients that look like anonymous scripts).

`check_credentials` is the night's first call: one cheap authenticated GET that proves the credentials work
before any listing, and turns a refusal into one message naming the credential mode and the command to fix it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from pipeline.credentials.model import CredentialsMode
from pipeline.credentials.remedy import dead_credentials_message
from pipeline.credentials.tokens import TokenManager
from pipeline.errors import SyncError
from pipeline.providers.errors import (
    ApiChanged,
    AuthError,
    MediaNotFound,
    ProviderResponseError,
    TransientResponseError,
)
from pipeline.providers.gopro import api
from pipeline.providers.http_status import TRANSPORT_ERRORS, raise_for_refusal, raise_for_status, unavailable
from pipeline.retry import RetryPolicy, call_with_retry
from pipeline.version import DISTRIBUTION, version

log = logging.getLogger(__name__)


def user_agent() -> str:
    """An honest User-Agent: the project, its version, and that it archives one person's own library."""
    return f"{DISTRIBUTION}/{version()} (personal archive of the account owner's own media)"


def request_headers() -> dict[str, str]:
    """Headers every request to an API or token host carries."""
    return {"User-Agent": user_agent()}


class _NotFound(SyncError):
    """A 404 from the API, turned into `MediaNotFound` by the caller that knows which medium was asked for."""


class NotJsonAnswer(TransientResponseError):
    """A 2xx body that is not JSON: transient while `get_json` retries it, permanent once they are spent."""


def decode_json(response: requests.Response, what: str) -> Any:
    """A 2xx body that is not JSON is most often cut short in transit: retried (bounded) before it is reported."""
    try:
        return response.json()
    except ValueError:
        raise NotJsonAnswer(
            f"{what}: the answer is not JSON", status=response.status_code, body=response.text
        ) from None


class GoProHttp:
    def __init__(
        self,
        *,
        api_url: str,
        tokens: TokenManager,
        session: requests.Session,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_url = api_url
        self._tokens = tokens
        self._session = session
        self._timeout = timeout
        self._policy = policy
        self._sleep = sleep

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        what: str,
        parse: Callable[[Any], Any] | None = None,
    ) -> Any:
        """GET an API path as the signed-in user, and `parse` the answer inside the retry, so an answer broken in
        passing (cut short, the API's own transient error) is fetched again. Raises `_NotFound` on 404."""

        def attempt() -> Any:
            payload = self._authorised_get(path, params=params, what=what)
            return parse(payload) if parse else payload

        # Every transient provider error: rate limits, 5xx, resets, and answers broken in passing.
        try:
            return call_with_retry(attempt, policy=self._policy, sleep=self._sleep, describe=what)
        except NotJsonAnswer as exc:
            # Read again on every retry and still not JSON: the API answers something else there (an HTML error
            # page, a changed format), which no later delivery fixes; the downloader dead-letters it at once.
            exc.transient = False
            raise

    def check_credentials(self, min_validity_seconds: float = 0) -> None:
        """The night's preflight: a token valid for `min_validity_seconds` (refreshed if need be), then one cheap
        authenticated call. A refusal becomes an `AuthError` whose message names the credential mode and the exact
        command that fixes it (it reaches the report and the log line of the night).

        The call is `GET /media/user` (rclone reads the owner there); it is confirmed by one client only, so a 404
        or 406/410 there falls back to a one-item search page, and only that answer decides "the API changed".
        """
        try:
            self._tokens.ensure_valid(min_validity_seconds)
            try:
                answer = self.get_json(api.USER_PATH, what="credentials check")
            except (_NotFound, ApiChanged) as exc:
                log.warning("credentials check: %s answered %s; trying a one-item search", api.USER_PATH, exc)
                self.get_json(api.SEARCH_PATH, params={"per_page": "1", "page": "1"}, what="credentials check")
            else:
                keys = sorted(answer)[:12] if isinstance(answer, dict) else type(answer).__name__
                log.info("credentials check passed (%s answered %s)", api.USER_PATH, keys)
        except AuthError as exc:
            message = dead_credentials_message(self._tokens.credentials, self._tokens.environment, str(exc))
            log.error("credentials check failed: %s", message)
            raise AuthError(message, reauth_required=True, code=exc.code) from None

    def get_media_json(self, path: str, media_id: str, *, what: str) -> Any:
        try:
            return self.get_json(path, what=what)
        except _NotFound:
            raise MediaNotFound(media_id) from None

    def _authorised_get(self, path: str, *, params: Mapping[str, str] | None, what: str) -> Any:
        token = self._tokens.access_token()
        response = self._send(path, params, token, what)
        raise_for_refusal(response, what, host="GoPro's API host")
        if response.status_code == 401:
            log.info("%s: access token refused; refreshing once", what)
            token = self._tokens.refresh(stale_token=token)
            response = self._send(path, params, token, what)
            raise_for_refusal(response, what, host="GoPro's API host")
            if response.status_code == 401:
                raise AuthError(f"{what}: GoPro refused a freshly refreshed token (HTTP 401)")
        if response.status_code == 404:
            raise _NotFound(what)
        raise_for_status(response, what)
        return decode_json(response, what)

    def _send(self, path: str, params: Mapping[str, str] | None, token: str, what: str) -> requests.Response:
        creds = self._tokens.credentials
        headers = {**request_headers(), "Accept": api.MEDIA_ACCEPT, "Authorization": f"Bearer {token}"}
        cookies = None
        if creds.mode is CredentialsMode.WEB_COOKIE:
            # A token pasted from the web app is its cookie; send it the way the web app does, too.
            cookies = {api.COOKIE_TOKEN: token}
            if creds.user_id:
                cookies[api.COOKIE_USER] = creds.user_id
        try:
            return self._session.get(
                f"{self._api_url}{path}",
                params=dict(params or {}),
                headers=headers,
                cookies=cookies,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except TRANSPORT_ERRORS as exc:
            raise unavailable(exc, what) from None
        except requests.RequestException as exc:
            raise ProviderResponseError(f"{what}: request failed ({type(exc).__name__})") from None
