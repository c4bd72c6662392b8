"""The manifest source as a `CloudProvider`: listing pages, a single-medium lookup, download plans.

HTTP policy, like the GoPro provider's: 429 waits as `Retry-After` says, 5xx/resets/timeouts are retried a
bounded number of times, 401/403 are an `AuthError` (a person must fix the token), anything else unexpected is a
`ProviderResponseError` with the status. Redirects are refused: the manifest URL is what was configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import requests

from pipeline.config import Settings
from pipeline.providers.base import CloudProvider, DownloadPlan, ListedFacts, ListingPage, MediaItem, MediaType
from pipeline.providers.errors import InvalidMediaId, MediaNotFound, ProviderResponseError
from pipeline.providers.http_manifest import api
from pipeline.providers.http_manifest.config import HttpManifestConfig
from pipeline.providers.http_manifest.parsing import Entry, ManifestPage, download_plan, parse_manifest
from pipeline.providers.http_status import TRANSPORT_ERRORS, raise_for_status, unavailable
from pipeline.retry import RetryPolicy, call_with_retry

JSON_ACCEPT = "application/json"
# A static token a person configured: a refusal needs that person, not a retry.
AUTH_STATUSES = frozenset({401, 403})
REFUSED_BY = "the manifest server"


class HttpManifestProvider(CloudProvider):
    name = api.NAME

    def __init__(
        self,
        *,
        config: HttpManifestConfig,
        session: requests.Session,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._session = session
        self._timeout = timeout
        self._policy = policy
        self._sleep = sleep

    # --- the contract ------------------------------------------------------------------------------------------

    def ensure_authenticated(self, *, min_validity_seconds: int = 0) -> None:
        """Nothing to refresh: the manifest is public or uses a static bearer token."""

    def validate_media_id(self, media_id: str) -> str:
        if not isinstance(media_id, str):
            raise InvalidMediaId(repr(media_id), "not a string")
        if not api.MEDIA_ID_PATTERN.fullmatch(media_id):
            raise InvalidMediaId(media_id, "ids are 1 to 128 letters, digits, '_' or '-'")
        return media_id

    def iter_pages(
        self, *, start_page: int = 1, newer_than: datetime | None = None, until: datetime | None = None
    ) -> Iterator[ListingPage]:
        """The manifest page by page (following `next`); pages before `start_page` are fetched but not yielded."""
        for number, page in self._pages():
            if number < start_page:
                continue
            items = tuple(e.item for e in page.entries)
            if newer_than is not None:
                items = tuple(i for i in items if i.captured_at is None or i.captured_at > newer_than)
            if until is not None:
                items = tuple(i for i in items if i.captured_at is None or i.captured_at <= until)
            yield ListingPage(page=number, total_pages=None, items=items, skipped=page.skipped)

    def resolve_download(
        self, media_id: str, *, media_type: MediaType = MediaType.VIDEO, listed: ListedFacts | None = None
    ) -> DownloadPlan:
        return download_plan(self._find(media_id))

    def describe(self, media_id: str) -> MediaItem:
        """One medium as the manifest lists it (MediaNotFound when it does not)."""
        return self._find(media_id).item

    # --- manifest ----------------------------------------------------------------------------------------------

    def _find(self, media_id: str) -> Entry:
        self.validate_media_id(media_id)
        for _number, page in self._pages():
            for entry in page.entries:
                if entry.item.media_id == media_id:
                    return entry
        raise MediaNotFound(media_id)

    def _pages(self) -> Iterator[tuple[int, ManifestPage]]:
        url: str | None = self._config.manifest_url
        seen: set[str] = set()
        number = 0
        while url is not None:
            if url in seen or number >= api.MAX_PAGES:
                raise ProviderResponseError(f"the manifest's '{api.NEXT_KEY}' links loop or never end")
            seen.add(url)
            number += 1
            page = parse_manifest(self._get_json(url, f"manifest page {number}"), url)
            yield number, page
            url = page.next_url

    def _get_json(self, url: str, what: str) -> Any:
        def attempt() -> Any:
            headers = {"Accept": JSON_ACCEPT}
            if self._config.token:
                headers["Authorization"] = f"Bearer {self._config.token}"
            try:
                response = self._session.get(url, headers=headers, timeout=self._timeout, allow_redirects=False)
            except TRANSPORT_ERRORS as exc:
                raise unavailable(exc, what) from None
            raise_for_status(
                response, what, ok=lambda status: status == 200, auth_statuses=AUTH_STATUSES, refused_by=REFUSED_BY
            )
            try:
                return response.json()
            except ValueError:
                raise ProviderResponseError(
                    f"{what}: not JSON", status=response.status_code, body=response.text
                ) from None

        # Every transient provider error (rate limits, 5xx, resets); an unusable answer is reported at once.
        return call_with_retry(attempt, policy=self._policy, sleep=self._sleep, describe=what)


def build(
    settings: Settings,
    config: HttpManifestConfig,
    *,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpManifestProvider:
    http = session or requests.Session()
    http.trust_env = False  # no proxy or .netrc credentials from the environment
    return HttpManifestProvider(
        config=config,
        session=http,
        timeout=(settings.http_connect_timeout, settings.http_read_timeout),
        policy=RetryPolicy.from_settings(settings),
        sleep=sleep,
    )
