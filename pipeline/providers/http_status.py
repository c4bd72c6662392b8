"""One mapping from an HTTP answer (or a failed exchange) to the providers' typed errors.

Why one place: both providers (and GoPro's token endpoint) decided "429 waits, 5xx and resets are transient,
anything else unexpected is an unusable answer" in their own words; httpx's habit is a single mapping at the
boundary, so a caller's retry, fail or skip follows from the error's type (and its `transient`) alone.
What differs between providers is passed in: which statuses mean "refused our credentials" and which count as
success. A provider's own readings of a status (GoPro's 401 → refresh once, 404 → medium gone) are decided by
the provider before it calls this.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import requests

from pipeline.providers.errors import (
    ApiChanged,
    AuthError,
    Blocked,
    ProviderResponseError,
    ProviderUnavailable,
    RateLimited,
)
from pipeline.retry import parse_retry_after

#: 406: the `Accept` media type is not (or no longer) served; 410: the vendor version is gone.
API_CHANGED_STATUSES = frozenset({406, 410})

#: Failures of the exchange itself (no answer, or none in time): worth trying again.
TRANSPORT_ERRORS: tuple[type[requests.RequestException], ...] = (requests.ConnectionError, requests.Timeout)


def is_2xx(status: int) -> bool:
    return 200 <= status < 300


def raise_for_status(
    response: requests.Response,
    what: str,
    *,
    ok: Callable[[int], bool] = is_2xx,
    auth_statuses: Collection[int] = (),
    refused_by: str = "the provider",
) -> None:
    """Raises the typed error for an answer that is not a success; returns quietly for one that is.

    `auth_statuses` are refusals no retry can fix (a person must change the credentials): `AuthError` with
    `reauth_required`. 429 is `RateLimited` with the server's `Retry-After`; 5xx `ProviderUnavailable`; any other
    status `ok` refuses is a `ProviderResponseError` with the status and a snippet of the body.
    """
    status = response.status_code
    if status in auth_statuses:
        raise AuthError(f"{what}: {refused_by} refused access (HTTP {status})", reauth_required=True)
    if status == 429:
        raise RateLimited(
            f"{what}: rate limited", retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500:
        raise ProviderUnavailable(f"{what}: HTTP {status}", status=status)
    if not ok(status):
        raise ProviderResponseError(f"{what}: unexpected answer", status=status, body=response.text)


def is_html(response: requests.Response) -> bool:
    """An HTML page (a CDN's block or error page), by its Content-Type or, without one, by its first byte."""
    content_type = response.headers.get("Content-Type", "").lower()
    if "html" in content_type:
        return True
    if content_type:
        return False
    return response.text.lstrip()[:1] == "<"


def raise_for_refusal(response: requests.Response, what: str, *, host: str) -> None:
    """Raises `ApiChanged` for 406/410 and `Blocked` for an HTML 403; returns quietly for anything else.

    Called first on every answer of an API or token host (never a content link: there a 403 is an expired
    signature), so "the API changed" and "we are blocked" are told apart from an outage or a bad token.
    """
    status = response.status_code
    if status in API_CHANGED_STATUSES:
        meaning = "no longer serves our Accept media type" if status == 406 else "no longer serves our API version"
        message = f"{what}: {host} {meaning} (HTTP {status}): the API changed, this client needs an update"
        raise ApiChanged(message, status=status)
    if status == 403 and is_html(response):
        raise Blocked(f"{what}: {host} answered an HTML 403 page: requests from this client are blocked")


def unavailable(exc: BaseException, what: str) -> ProviderUnavailable:
    """The typed error for a failed exchange (one of `TRANSPORT_ERRORS`); the URL is never part of it."""
    return ProviderUnavailable(f"{what}: {type(exc).__name__}")
