"""The alarm metric of a provider failure, counted the same way by the listing and the downloader.

Why one function: three failures each have their own alarm (docs/runbook.md) and must be told apart wherever they
happen: GoPro refused the credentials (`AuthenticationFailures`), the API no longer speaks our version
(`ApiChanged`: 406/410), GoPro's CDN blocks this client (`ProviderBlocked`: an HTML 403). Each alarm fires on the
first one.
"""

from __future__ import annotations

from pipeline.observability.metrics import Metric, MetricsEmitter
from pipeline.providers.errors import ApiChanged, AuthError, Blocked


def count_provider_failure(metrics: MetricsEmitter, exc: BaseException) -> Metric | None:
    """Counts `exc` on its alarm metric, if it has one; returns the metric counted."""
    if isinstance(exc, AuthError):
        metrics.count(Metric.AUTHENTICATION_FAILURES, reauth_required=int(exc.reauth_required))
        return Metric.AUTHENTICATION_FAILURES
    if isinstance(exc, ApiChanged):
        metrics.count(Metric.API_CHANGED, status=exc.status)
        return Metric.API_CHANGED
    if isinstance(exc, Blocked):
        metrics.count(Metric.PROVIDER_BLOCKED, status=exc.status)
        return Metric.PROVIDER_BLOCKED
    return None
