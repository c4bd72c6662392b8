"""The GoPro cloud library as a `CloudProvider`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime

import requests
from requests.adapters import HTTPAdapter

from pipeline.config import Settings
from pipeline.credentials.tokens import TokenManager
from pipeline.providers.base import CloudProvider, DownloadPlan, ListedFacts, ListingPage, MediaItem, MediaType
from pipeline.providers.errors import InvalidMediaId
from pipeline.providers.gopro import api
from pipeline.providers.gopro.config import GoProSettings
from pipeline.providers.gopro.descriptor import plan_download
from pipeline.providers.gopro.http import GoProHttp
from pipeline.providers.gopro.parsing import parse_search_page


class GoProProvider(CloudProvider):
    name = api.NAME

    def __init__(
        self,
        *,
        tokens: TokenManager,
        http: GoProHttp,
        page_size: int = 100,
        include_raw: bool = False,
    ) -> None:
        self._tokens = tokens
        self._http = http
        self._page_size = page_size
        self._include_raw = include_raw

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

    def iter_pages(self, *, start_page: int = 1, newer_than: datetime | None = None) -> Iterator[ListingPage]:
        """Pages from `start_page` until `_pages.total_pages` or an empty last page.

        With `newer_than`, items created at or before the bound are left out, and the listing stops after a page
        that is entirely older, but only if that page is sorted newest first (otherwise an ascending order would
        make us stop before reaching anything new). That page says it is the last (`total_pages`), so a caller
        short of time does not hand an empty remainder to another invocation.
        """
        page = max(1, start_page)
        while True:
            listing: ListingPage = self._http.get_json(
                api.SEARCH_PATH,
                params={
                    "fields": ",".join(api.LIST_FIELDS),
                    "order_by": api.ORDER_BY,
                    "per_page": str(self._page_size),
                    "page": str(page),
                },
                what=f"list media page {page}",
                parse=lambda answer, page=page: parse_search_page(answer, requested_page=page),
            )
            if not listing.items:
                return
            if newer_than is None:
                yield listing
            else:
                newer = tuple(i for i in listing.items if i.created_at is None or i.created_at > newer_than)
                if not newer and _newest_first(listing.items):
                    yield replace(listing, total_pages=listing.page, items=newer)
                    return
                yield replace(listing, items=newer)
            if listing.total_pages is not None and page >= listing.total_pages:
                return
            page += 1

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

    def still_listed(self, media_id: str) -> bool | None:
        """A whole walk of the library, or None when a page came back short: GoPro serves short pages that
        look complete (../shared/gopro-api.md), and a medium missing from one proves nothing."""
        for listing in self.iter_pages():
            if any(item.media_id == media_id for item in listing.items):
                return True
            last = listing.total_pages is None or listing.page >= listing.total_pages
            if not last and len(listing.items) + len(listing.skipped) < self._page_size:
                return None
        return False


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
        tokens=tokens, http=http, page_size=settings.list_page_size, include_raw=gopro.include_raw
    )
