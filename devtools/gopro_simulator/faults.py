"""Fault rules and the thread-safe runtime switchboard that injects them into simulator responses.

Why rules as small dataclasses: the same objects describe faults at construction (`SimulatorConfig.faults`) and at
runtime (`sim.faults.add(...)` or the convenience methods), and a test reads like the failure it provokes:
`sim.faults.rate_limit(count=2, retry_after=3)`. A rule with a `count` is consumed by the requests it hits; a
`count` of None keeps it active until `clear()`.

Endpoints are named `token`, `search`, `download` (the API) and `content` (the pre-signed file links). A rule whose
`endpoint` is None hits any *API* endpoint; content faults are always asked for explicitly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from devtools.gopro_simulator.server import GoProSimulator


class Endpoint(StrEnum):
    TOKEN = "token"
    SEARCH = "search"
    DOWNLOAD = "download"
    CONTENT = "content"
    USER = "user"  # GET /media/user: the signed-in user (the pipeline's preflight call)
    # GET /media/{id}/moments: HiLights. Not in API_ENDPOINTS, so a fault rule reaches it only when it names it.
    MOMENTS = "moments"


API_ENDPOINTS = frozenset({Endpoint.TOKEN, Endpoint.SEARCH, Endpoint.DOWNLOAD, Endpoint.USER})


class ListingFault(StrEnum):
    """Ways a listing page can come back broken."""

    HTML_502 = "html_502"  # a load balancer's HTML error page with status 502
    TRUNCATED_JSON = "truncated_json"  # status 200, body cut in the middle of the JSON
    MISSING_FIELDS = "missing_fields"  # 1st medium without `id`, 2nd without `type`, `_pages.total_items` gone
    WRONG_TYPES = "wrong_types"  # `file_size`/`item_count` as strings, `captured_at` as a number, `filename` null
    EMPTY_PAGE = "empty_page"  # `media: []` although `_pages` says more pages follow
    EMBEDDED_ERRORS = "embedded_errors"  # status 200 with `_embedded.errors` set and no media


@dataclass
class RateLimit:
    """429 with `Retry-After` (seconds) for the next `count` matching calls."""

    count: int | None = 1
    retry_after: int = 1
    endpoint: str | None = None


@dataclass
class ServerError:
    """A 5xx (HTML body, as a load balancer sends) for the next `count` matching calls (of one medium's calls
    only, when `media_id` is given)."""

    count: int | None = 1
    status: int = 503
    endpoint: str | None = None
    media_id: str | None = None


@dataclass
class CutConnection:
    """Close the connection after `after_bytes` bytes of a content body (FIN; `reset=True` sends a TCP RST)."""

    after_bytes: int
    count: int | None = 1
    media_id: str | None = None
    reset: bool = False


@dataclass
class SlowFirstByte:
    """Wait `delay` seconds before the status line (endpoint None: any endpoint, content included)."""

    delay: float
    count: int | None = 1
    endpoint: str | None = None
    media_id: str | None = None


@dataclass
class MalformedListing:
    """Break the next `count` listing answers (only for page `page` when given)."""

    kind: ListingFault | str
    count: int | None = 1
    page: int | None = None


@dataclass
class ShortPage:
    """The next `count` listing pages (only page `page` when given) carry at most `items` media although `_pages`
    says they are full, as the live service does at times (a page of 12 with `per_page` 100: G2C)."""

    items: int = 12
    count: int | None = 1
    page: int | None = None


class AbsurdKind(StrEnum):
    """Impossible values one listed medium can carry."""

    HUGE_SIZE = "huge_size"  # `file_size` 10**15
    NEGATIVE_SIZE = "negative_size"  # `file_size` -1
    BAD_DATE = "bad_date"  # `created_at` and `captured_at` not a time at all
    BAD_ID = "bad_id"  # an `id` with characters no GoPro id has


@dataclass
class AbsurdValue:
    """Medium `media_id` (default: the first medium of each page) is listed with an impossible `kind` of value, on
    every listing until cleared (`count` None) or for `count` listing pages. Its descriptor and content are
    untouched: only what the listing says is absurd."""

    kind: AbsurdKind | str = AbsurdKind.HUGE_SIZE
    media_id: str | None = None
    count: int | None = None


@dataclass
class IgnoreRange:
    """Answer a ranged content request with 200 and the whole body, which clients must handle."""

    count: int | None = 1
    media_id: str | None = None


@dataclass
class NotFound:
    """A 404 from the download descriptor of a medium that exists, for the next `count` calls: GoPro answers one
    now and then, so a single 404 is not proof of deletion (../shared/gopro-api.md)."""

    count: int | None = 1
    media_id: str | None = None


@dataclass
class Blocked:
    """CloudFront's HTML `403 Request blocked` page for the next `count` matching API or token calls, as GoPro's
    CDN answers clients it takes for scripts (endpoint None: every API endpoint, the token endpoint included)."""

    count: int | None = 1
    endpoint: str | None = None


@dataclass
class VendorRefusal:
    """The API refusing our vendor media type: 406 (`Accept` not served) or 410 (version gone), JSON body, for the
    next `count` matching API calls: how the service answers once it no longer speaks what a client sends."""

    status: int = 410
    count: int | None = 1
    endpoint: str | None = None


FaultRule = (
    RateLimit
    | ServerError
    | CutConnection
    | SlowFirstByte
    | MalformedListing
    | IgnoreRange
    | ShortPage
    | AbsurdValue
    | NotFound
    | Blocked
    | VendorRefusal
)
RuleT = TypeVar(
    "RuleT",
    RateLimit,
    ServerError,
    CutConnection,
    SlowFirstByte,
    MalformedListing,
    IgnoreRange,
    ShortPage,
    AbsurdValue,
    NotFound,
    Blocked,
    VendorRefusal,
)


class Faults:
    """Runtime fault controls of one simulator (`sim.faults`); every method is safe to call from any thread.

    Besides the rules, it carries the settings a test flips while the server runs: bandwidth cap, pre-signed URL
    lifetime, the repeated-item paging quirk, and shortcuts for token and library faults.
    """

    def __init__(self, sim: GoProSimulator, rules: tuple[FaultRule, ...] = ()) -> None:
        self._sim = sim
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.bandwidth: int | None = sim.config.bandwidth
        self.url_ttl: int = sim.config.url_ttl
        self.repeat_last_item: bool = sim.config.repeat_last_item
        for rule in rules:
            self.add(rule)

    # -- rules ---------------------------------------------------------------------------------------------------

    def add(self, rule: FaultRule) -> FaultRule:
        """Activate a rule (a copy is kept, so the caller's object is never mutated)."""
        if isinstance(rule, MalformedListing):
            rule = replace(rule, kind=ListingFault(rule.kind))
        if isinstance(rule, AbsurdValue):
            rule = replace(rule, kind=AbsurdKind(rule.kind))
        with self._lock:
            self._rules.append(replace(rule))
        return rule

    def clear(self) -> None:
        """Remove every rule and restore the configured bandwidth, URL lifetime and paging quirk."""
        with self._lock:
            self._rules.clear()
            self.bandwidth = self._sim.config.bandwidth
            self.url_ttl = self._sim.config.url_ttl
            self.repeat_last_item = self._sim.config.repeat_last_item

    @property
    def active(self) -> list[FaultRule]:
        """Copies of the rules still active."""
        with self._lock:
            return [replace(rule) for rule in self._rules]

    def take(self, kind: type[RuleT], matches: Callable[[RuleT], bool]) -> RuleT | None:
        """Consume one use of the first active rule of `kind` that `matches` (used by the request handler)."""
        with self._lock:
            for rule in self._rules:
                if isinstance(rule, kind) and matches(rule):
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            self._rules.remove(rule)
                    return replace(rule)
        return None

    # -- convenience wrappers ------------------------------------------------------------------------------------

    def rate_limit(self, count: int | None = 1, retry_after: int = 1, endpoint: str | None = None) -> None:
        self.add(RateLimit(count=count, retry_after=retry_after, endpoint=endpoint))

    def server_errors(self, count: int | None = 1, status: int = 503, endpoint: str | None = None) -> None:
        self.add(ServerError(count=count, status=status, endpoint=endpoint))

    def cut_connection(
        self, after_bytes: int, count: int | None = 1, media_id: str | None = None, reset: bool = False
    ) -> None:
        self.add(CutConnection(after_bytes=after_bytes, count=count, media_id=media_id, reset=reset))

    def slow_first_byte(
        self, delay: float, count: int | None = 1, endpoint: str | None = None, media_id: str | None = None
    ) -> None:
        self.add(SlowFirstByte(delay=delay, count=count, endpoint=endpoint, media_id=media_id))

    def malformed_listing(self, kind: ListingFault | str, count: int | None = 1, page: int | None = None) -> None:
        self.add(MalformedListing(kind=kind, count=count, page=page))

    def short_pages(self, items: int = 12, count: int | None = 1, page: int | None = None) -> None:
        self.add(ShortPage(items=items, count=count, page=page))

    def absurd_value(
        self, kind: AbsurdKind | str = AbsurdKind.HUGE_SIZE, media_id: str | None = None, count: int | None = None
    ) -> None:
        self.add(AbsurdValue(kind=kind, media_id=media_id, count=count))

    def ignore_range(self, count: int | None = 1, media_id: str | None = None) -> None:
        self.add(IgnoreRange(count=count, media_id=media_id))

    def transient_not_found(self, count: int | None = 1, media_id: str | None = None) -> None:
        """The descriptor answers 404 `count` times although the medium exists (then it answers normally)."""
        self.add(NotFound(count=count, media_id=media_id))

    def block(self, count: int | None = 1, endpoint: str | None = None) -> None:
        self.add(Blocked(count=count, endpoint=endpoint))

    def refuse_vendor_version(self, status: int = 410, count: int | None = 1, endpoint: str | None = None) -> None:
        if status not in (406, 410):
            raise ValueError("a vendor refusal is 406 or 410")
        self.add(VendorRefusal(status=status, count=count, endpoint=endpoint))

    # -- settings ------------------------------------------------------------------------------------------------

    def set_bandwidth(self, bytes_per_second: int | None) -> None:
        """Cap every content response (token bucket per response); None removes the cap. Applies mid-transfer."""
        if bytes_per_second is not None and bytes_per_second <= 0:
            raise ValueError("bandwidth must be positive or None")
        self.bandwidth = bytes_per_second

    def set_url_ttl(self, seconds: int) -> None:
        """Lifetime of pre-signed links issued from now on (0: already expired when issued)."""
        if seconds < 0:
            raise ValueError("url ttl must be >= 0")
        self.url_ttl = int(seconds)

    def set_repeat_last_item(self, enabled: bool) -> None:
        """Pages after the first start with the previous page's last medium, as the real API sometimes does."""
        self.repeat_last_item = enabled

    # -- shortcuts into the token store and the library ----------------------------------------------------------

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on; a refresh issues a working one."""
        self._sim.tokens.expire_all()

    def blacklist_refresh_token(self, token: str | None = None) -> None:
        """Refreshing with `token` (default: the current one) answers `token_blacklisted`."""
        self._sim.tokens.blacklist(token)

    def delete_media(self, media_id: str) -> None:
        """The medium leaves the listing; its descriptor and its content links answer 404."""
        self._sim.delete_media(media_id)

    def set_ready_state(self, media_id: str, state: str) -> None:
        """E.g. `transcoding`: still processing, listed with that `ready_to_view` and with an empty descriptor."""
        self._sim.set_ready_state(media_id, state)
