"""The GoPro cloud library as a `CloudProvider`."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import requests
from requests.adapters import HTTPAdapter

from pipeline.config import Settings
from pipeline.credentials.tokens import TokenManager
from pipeline.providers.base import (
    CloudProvider,
    DownloadPlan,
    ListedFacts,
    ListingPage,
    MediaItem,
    MediaType,
    Moment,
)
from pipeline.providers.errors import InvalidMediaId
from pipeline.providers.gopro import api
from pipeline.providers.gopro.config import GoProSettings
from pipeline.providers.gopro.descriptor import plan_download
from pipeline.providers.gopro.http import GoProHttp
from pipeline.providers.gopro.parsing import page_size_of, parse_moments, parse_search_page

log = logging.getLogger(__name__)
# How `created_range` bounds are written: ISO-8601 UTC to the second.
RANGE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class GoProProvider(CloudProvider):
    name = api.NAME

    def __init__(
        self,
        *,
        tokens: TokenManager,
        http: GoProHttp,
        page_size: int = 100,
        include_raw: bool = False,
        include_edits: bool = True,
        short_page_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`short_page_delay`: the first wait before a short page is asked again (doubled at each try)."""
        self._tokens = tokens
        self._http = http
        self._page_size = page_size
        self._include_raw = include_raw
        self._include_edits = include_edits
        self._short_page_delay = short_page_delay
        self._sleep = sleep

    @property
    def tokens(self) -> TokenManager:
        return self._tokens

    def ensure_authenticated(self, *, min_validity_seconds: int = 0) -> None:
        self._tokens.ensure_valid(min_validity_seconds)

    def check_credentials(self, *, min_validity_seconds: int = 0) -> None:
        self._http.check_credentials(min_validity_seconds)

    def validate_media_id(self, media_id: str) -> str:
        if not isinstance(media_id, str):
            raise InvalidMediaId(repr(media_id), "not a string")
        if not api.MEDIA_ID_PATTERN.fullmatch(media_id):
            raise InvalidMediaId(media_id, "GoPro ids are 6 to 64 letters and digits")
        return media_id

    def iter_pages(
        self, *, start_page: int = 1, newer_than: datetime | None = None, until: datetime | None = None
    ) -> Iterator[ListingPage]:
        """Pages from `start_page` to `_pages.total_pages` (or an empty page when the answer has no total).

        With a bound, the search asks for `created_range=<newer_than>,<until>` (upload time, both ends given), and
        items outside the bounds are still left out here (a backstop: unknown parameters are silently ignored by
        the API). If the range was ignored, the listing stops after a page that is entirely older, but only if
        that page is sorted newest first; that page says it is the last (`total_pages`) and states no
        `total_items` (the library's total says nothing about what is new).

        A page with fewer entries than `_pages` promises is asked again (`api.SHORT_PAGE_RETRIES`); one still
        short is yielded with `short=True`, and the walk goes on to the next page.
        """
        page = max(1, start_page)
        params = {"fields": ",".join(api.LIST_FIELDS), "order_by": api.ORDER_BY, "per_page": str(self._page_size)}
        if newer_than is not None or until is not None:
            params[api.CREATED_RANGE] = f"{_range_start(newer_than)},{_range_end(until)}"
        while True:
            listing = self._fetch_page(page, params)
            empty = not listing.items and not listing.skipped
            if empty and (listing.total_pages is None or page >= listing.total_pages):
                return
            newer = tuple(i for i in listing.items if _within(i, newer_than, until))
            if newer_than is not None and not newer and listing.items and _newest_first(listing.items):
                yield replace(listing, total_pages=listing.page, items=newer, total_items=None)
                return
            yield replace(listing, items=newer)
            if listing.total_pages is not None and page >= listing.total_pages:
                return
            page += 1

    def _fetch_page(self, page: int, params: dict[str, str]) -> ListingPage:
        """One page, asked again while it is shorter than `min(per_page, total_items - (page-1) * per_page)`."""
        best: ListingPage | None = None
        for attempt in range(api.SHORT_PAGE_RETRIES + 1):
            if attempt:
                self._sleep(self._short_page_delay * 2 ** (attempt - 1))
            listing, per_page = self._http.get_json(
                api.SEARCH_PATH,
                params={**params, "page": str(page)},
                what=f"list media page {page}",
                parse=lambda answer, page=page: (
                    parse_search_page(answer, requested_page=page, include_edits=self._include_edits),
                    page_size_of(answer),
                ),
            )
            expected = _expected_entries(listing, per_page or self._page_size)
            entries = len(listing.items) + len(listing.skipped)
            if best is None or entries > len(best.items) + len(best.skipped):
                best = listing
            if expected is None or entries >= expected:
                return listing
            log.warning(
                "page %d has %d of the %d media it should (total_items %s); asking again",
                page,
                entries,
                expected,
                listing.total_items,
            )
        assert best is not None
        log.warning("page %d stayed short after %d tries: walk incomplete", page, api.SHORT_PAGE_RETRIES + 1)
        return replace(best, short=True)

    def resolve_download(
        self, media_id: str, *, media_type: MediaType = MediaType.VIDEO, listed: ListedFacts | None = None
    ) -> DownloadPlan:
        self.validate_media_id(media_id)
        payload = self._http.get_media_json(
            api.DOWNLOAD_PATH.format(media_id=media_id), media_id, what=f"download descriptor of {media_id}"
        )
        listed = listed or ListedFacts()
        return plan_download(
            payload,
            media_id=media_id,
            media_type=media_type,
            listed_filename=listed.filename,
            item_count=listed.item_count,
            include_raw=self._include_raw,
        )

    def moments(self, media_id: str) -> tuple[Moment, ...] | None:
        """One call to `/media/{id}/moments` (asked only when the listing counted moments)."""
        self.validate_media_id(media_id)
        payload = self._http.get_media_json(
            api.MOMENTS_PATH.format(media_id=media_id), media_id, what=f"HiLight moments of {media_id}"
        )
        return parse_moments(payload)

    def still_listed(self, media_id: str) -> bool | None:
        """A whole walk of the library, or None when a page came back short: GoPro serves short pages that
        look complete (../shared/gopro-api.md), and a medium missing from one proves nothing."""
        for listing in self.iter_pages():
            if any(item.media_id == media_id for item in listing.items):
                return True
            last = listing.total_pages is None or listing.page >= listing.total_pages
            if listing.short or (not last and len(listing.items) + len(listing.skipped) < self._page_size):
                return None
        return False


def _expected_entries(listing: ListingPage, per_page: int) -> int | None:
    """How many entries a full page holds: `min(per_page, total_items - (page-1) * per_page)` (None: unknown)."""
    if listing.total_items is None:
        return None
    return max(0, min(per_page, listing.total_items - (listing.page - 1) * per_page))


def _within(item: MediaItem, newer_than: datetime | None, until: datetime | None) -> bool:
    if item.created_at is None:
        return True
    return (newer_than is None or item.created_at > newer_than) and (until is None or item.created_at <= until)


def _range_start(moment: datetime | None) -> str:
    """The range's start, floored to the second (the check here keeps the exact bound)."""
    return "" if moment is None else moment.astimezone(UTC).strftime(RANGE_FORMAT)


def _range_end(moment: datetime | None) -> str:
    """The range's explicit end, raised to the next whole second so nothing created at the bound is cut."""
    if moment is None:
        return ""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime(RANGE_FORMAT)


def _newest_first(items: tuple[MediaItem, ...]) -> bool:
    stamps = [i.created_at for i in items if i.created_at is not None]
    return all(a >= b for a, b in itertools.pairwise(stamps))


def make_session(pool_size: int = 10) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def build(
    settings: Settings,
    tokens_factory: Callable[[Settings, Callable], TokenManager],
    *,
    gopro: GoProSettings | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> GoProProvider:
    """Assembles the provider; `tokens_factory(settings, refresher)` decides where credentials live.

    `gopro`: the provider's own settings (default: read from the environment `settings` were read from).
    """
    from pipeline.providers.gopro.auth import GoProAuth
    from pipeline.retry import RetryPolicy

    gopro = gopro or GoProSettings.of(settings)
    http_session = session or make_session()
    timeout = (settings.http_connect_timeout, settings.http_read_timeout)
    policy = RetryPolicy.from_settings(settings)
    auth = GoProAuth(
        auth_url=gopro.auth_url,
        session=http_session,
        timeout=timeout,
        policy=policy,
        clock=clock,
        sleep=sleep,
    )
    tokens = tokens_factory(settings, auth.refresh)
    http = GoProHttp(
        api_url=gopro.api_url,
        tokens=tokens,
        session=http_session,
        timeout=timeout,
        policy=policy,
        sleep=sleep,
    )
    return GoProProvider(
        tokens=tokens,
        http=http,
        page_size=settings.list_page_size,
        include_raw=gopro.include_raw,
        include_edits=gopro.include_edits,
        short_page_delay=settings.retry_base_delay,
        sleep=sleep,
    )
