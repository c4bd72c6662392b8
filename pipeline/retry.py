"""Bounded retries with exponential backoff, full jitter, and respect for a server's `Retry-After`.

Why not `@backoff.on_exception` alone: its loop sleeps through the global `time.sleep` (tests could not check a
`Retry-After` of 60 s without waiting 60 s) and it would jitter a server-mandated wait down to less than asked.
So the delay sequence comes from backoff's own generators (`expo` + `full_jitter`), and this small loop adds an
injectable sleep and clock and treats `retry_after` as a floor.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import backoff

from pipeline.config import Settings
from pipeline.deadline import Deadline
from pipeline.errors import is_transient

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    # A server asking us to wait longer than this is treated as "not now": we give up and let the caller's own
    # redelivery (SQS, next night) try later rather than sleeping through a Lambda's deadline.
    max_retry_after: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.retry_max_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
        )

    def delays(self) -> Iterator[float]:
        """Full-jitter exponential delays: uniform(0, min(max_delay, base * 2**n))."""
        gen = backoff.expo(base=2, factor=self.base_delay, max_value=self.max_delay)
        next(gen)  # backoff's generators are primed with one next()
        for ceiling in gen:
            yield backoff.full_jitter(ceiling)


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    retry_on: tuple[type[BaseException], ...] | None = None,
    give_up: Callable[[BaseException], bool] = lambda _exc: False,
    sleep: Callable[[float], None] = time.sleep,
    deadline: Deadline | None = None,
    describe: str = "call",
) -> T:
    """Call `fn` until it succeeds, an error not worth retrying occurs, attempts run out, or `deadline` would pass.

    `retry_on`: the exception types to retry; None (the default) retries exactly the transient ones
    (`pipeline.errors.is_transient`), which is what a caller raising the project's own errors wants.
    An exception with a `retry_after` attribute (seconds, or None) waits at least that long. No retry starts
    whose wait would end past `deadline` (a Lambda's remaining time, for example).
    """
    retried = (Exception,) if retry_on is None else retry_on
    delays = policy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except retried as exc:
            if (retry_on is None and not is_transient(exc)) or give_up(exc) or attempt >= policy.max_attempts:
                raise
            wait = next(delays)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                if retry_after > policy.max_retry_after:
                    log.warning(
                        "%s: server asked to wait %.0fs, more than %.0fs; giving up for now",
                        describe,
                        retry_after,
                        policy.max_retry_after,
                    )
                    raise
                wait = max(wait, float(retry_after))
            if deadline is not None and deadline.remaining_seconds() < wait:
                raise
            log.info(
                "%s failed (%s); retry %d/%d in %.2fs",
                describe,
                type(exc).__name__,
                attempt,
                policy.max_attempts - 1,
                wait,
            )
            sleep(wait)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None when absent or garbled."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
