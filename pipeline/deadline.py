"""Time left in an invocation, in one unit: a monotonic deadline read in seconds.

Why one type: the Lambda context reports milliseconds left, the engine wanted an absolute monotonic instant and
the listing compared milliseconds; three units for one idea is how an off-by-1000 hides. A `Deadline` is built
once at the edge (from the Lambda context, or "never" for a command run by hand) and passed inward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    #: The monotonic instant (per `clock`) at which the invocation ends; None: no deadline.
    at: float | None
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def never(cls, clock: Clock = time.monotonic) -> Deadline:
        return cls(None, clock)

    @classmethod
    def in_seconds(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    @classmethod
    def from_lambda_context(cls, context: Any, clock: Clock = time.monotonic) -> Deadline:
        """Lambda's context, or anything without `get_remaining_time_in_millis` (no deadline)."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if not callable(remaining):
            return cls.never(clock)
        return cls(clock() + remaining() / 1000.0, clock)

    def remaining_seconds(self) -> float:
        """Seconds left (infinite without a deadline)."""
        return float("inf") if self.at is None else self.at - self.clock()

    def near(self, margin_seconds: float) -> bool:
        """Whether less than `margin_seconds` are left."""
        return self.remaining_seconds() < margin_seconds

    def earlier_by(self, seconds: float) -> Deadline:
        """The same deadline moved `seconds` earlier (a safety margin kept back for bookkeeping)."""
        return self if self.at is None else Deadline(self.at - seconds, self.clock)
