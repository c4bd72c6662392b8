"""Typed provider errors: the handlers decide retry, fail or skip from the type alone, never from text.

Every message passes through `redact`, so an error body that echoes a token cannot carry it into a log line.
"""

from __future__ import annotations

from pipeline.errors import SyncError
from pipeline.observability.redaction import redact

SNIPPET_LENGTH = 200


def snippet(body: str | bytes | None, limit: int = SNIPPET_LENGTH) -> str:
    """A short, single-line, secret-free excerpt of a response body for error messages."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit] + "…"
    return redact(text)


class ProviderError(SyncError):
    """Base of every provider failure."""

    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class AuthError(ProviderError):
    """The provider refused our credentials.

    `reauth_required` means no refresh can help (a pasted access token expired, a refresh token was revoked or
    blacklisted): a person must sign in again, so the pipeline alerts instead of retrying.
    """

    def __init__(self, message: str, *, reauth_required: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.reauth_required = reauth_required
        #: The token endpoint's `error` (`token_blacklisted`, `invalid_grant` ...), when it gave one.
        self.code = code


class RateLimited(ProviderError):
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MediaNotFound(ProviderError):
    """The medium no longer exists at the source (deleted by its owner)."""

    def __init__(self, media_id: str) -> None:
        super().__init__(f"media {media_id} not found at the provider")
        self.media_id = media_id


class DeletionUnconfirmed(ProviderError):
    """A 404 that does not prove the medium was deleted (the first one, or one while the listing still shows
    it): transient, so the medium stays retryable until a later attempt confirms the deletion."""

    transient = True


class IncompleteMedium(ProviderError):
    """The provider offers fewer originals than the medium has (a chaptered recording missing chapters), or a
    fresh descriptor no longer offers a file being transferred.

    Transient: the provider may still be processing the missing items. Never recorded COMPLETED: the medium is
    retried (SQS's receives, then a later night's listing) and reported FAILED with this message meanwhile.
    """

    transient = True


class ProviderUnavailable(ProviderError):
    """5xx, a reset connection or a timeout: worth retrying later."""

    transient = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderResponseError(ProviderError):
    """An answer we cannot use: unexpected status, not JSON, missing or wrongly typed fields."""

    def __init__(self, message: str, *, status: int | None = None, body: str | bytes | None = None) -> None:
        self.status = status
        self.snippet = snippet(body)
        detail = f" (HTTP {status})" if status is not None else ""
        tail = f": {self.snippet}" if self.snippet else ""
        super().__init__(f"{message}{detail}{tail}")


class ApiChanged(ProviderError):
    """The API no longer answers the way this client speaks it: 406 (our `Accept` media type is not served) or
    410 (our vendor `version=` is gone). No retry can help and no medium is at fault: the code must change, so it
    has its own metric and alarm (`ApiChanged`, docs/runbook.md)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class Blocked(ProviderError):
    """GoPro's CDN answered the API or token host with an HTML `403 Request blocked` page: this client was
    refused as a script, not for its token (a token refusal is a JSON 401). Retrying at once makes it worse, so it
    is not transient; it has its own metric and alarm (`ProviderBlocked`, docs/runbook.md)."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class TransientResponseError(ProviderResponseError):
    """An answer that looks broken in passing (a 2xx body cut short, the API's own `internal_error`): retried a
    few times before it is reported like any other unusable answer."""

    transient = True


class InvalidMediaId(ProviderError):
    """A media id outside the provider's alphabet: refused before it reaches a URL or a key."""

    def __init__(self, media_id: str, why: str) -> None:
        shown = media_id if len(media_id) <= 40 else media_id[:40] + "…"
        super().__init__(f"invalid media id {shown!r}: {why}")
