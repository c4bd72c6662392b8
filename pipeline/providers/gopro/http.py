"""One HTTP exchange with GoPro, mapped onto the provider's typed errors, with bounded retries.

Policy: 401 → refresh the token once and try again; 429 → wait as `Retry-After` says; 5xx, resets and timeouts →
bounded exponential retries; anything else unexpected → `ProviderResponseError` with the status and a snippet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from pipeline.credentials.tokens import TokenManager
from pipeline.errors import SyncError
from pipeline.providers.errors import AuthError, MediaNotFound, ProviderResponseError, TransientResponseError
from pipeline.providers.gopro import api
from pipeline.providers.http_status import TRANSPORT_ERRORS, raise_for_status, unavailable
from pipeline.retry import RetryPolicy, call_with_retry

log = logging.getLogger(__name__)


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

    def get_media_json(self, path: str, media_id: str, *, what: str) -> Any:
        try:
            return self.get_json(path, what=what)
        except _NotFound:
            raise MediaNotFound(media_id) from None

    def _authorised_get(self, path: str, *, params: Mapping[str, str] | None, what: str) -> Any:
        token = self._tokens.access_token()
        response = self._send(path, params, token, what)
        if response.status_code == 401:
            log.info("%s: access token refused; refreshing once", what)
            token = self._tokens.refresh(stale_token=token)
            response = self._send(path, params, token, what)
            if response.status_code == 401:
                raise AuthError(f"{what}: GoPro refused a freshly refreshed token (HTTP 401)")
        if response.status_code == 404:
            raise _NotFound(what)
        raise_for_status(response, what)
        return decode_json(response, what)

    def _send(self, path: str, params: Mapping[str, str] | None, token: str, what: str) -> requests.Response:
        creds = self._tokens.credentials
        headers = {"Accept": api.MEDIA_ACCEPT, "Authorization": f"Bearer {token}"}
        cookies = None
        if not creds.refreshable:
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
