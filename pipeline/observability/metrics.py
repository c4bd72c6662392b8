"""CloudWatch Embedded Metric Format: a metric is one JSON line on stdout, and CloudWatch Logs extracts it.

Why EMF rather than PutMetricData: no extra API call (or IAM permission, or latency) per video, and metrics stay
next to the log lines of the same unit of work.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import IO

from pipeline.observability import correlation


class Unit(StrEnum):
    COUNT = "Count"
    BYTES = "Bytes"
    SECONDS = "Seconds"
    MILLISECONDS = "Milliseconds"
    MEGABITS_PER_SECOND = "Megabits/Second"


class Metric(StrEnum):
    """Every metric the pipeline emits; the dashboard and alarms refer to these names."""

    VIDEOS_SYNCED = "VideosSynced"
    VIDEOS_FAILED = "VideosFailed"
    VIDEOS_ENQUEUED = "VideosEnqueued"
    VIDEOS_LISTED = "VideosListed"
    SOURCE_DELETED = "SourceDeleted"
    BYTES_TRANSFERRED = "BytesTransferred"
    TRANSFER_DURATION = "TransferDuration"
    TRANSFER_THROUGHPUT = "TransferThroughput"
    TIME_TO_FIRST_BYTE = "TimeToFirstByte"
    AUTHENTICATION_FAILURES = "AuthenticationFailures"
    API_CHANGED = "ApiChanged"  # 406/410 from the provider's API or token host
    PROVIDER_BLOCKED = "ProviderBlocked"  # an HTML 403 from the provider's API or token host
    POISON_MESSAGES = "PoisonMessages"
    LISTER_FAILURES = "ListerFailures"
    MESSAGES_EXPIRED = "MessagesExpired"  # queued media whose message expired unprocessed (seen by the listing)
    BACKLOG_WAITING = "BacklogWaiting"  # media left PENDING for a later night (backfill sizing)
    ROTATION_SUCCESS = "RotationSucceeded"
    ROTATION_FAILURE = "RotationFailed"


class MetricsEmitter:
    """Writes EMF lines. Dimensions are fixed per emitter (environment and provider) to keep alarms simple."""

    def __init__(
        self,
        namespace: str,
        dimensions: Mapping[str, str],
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._namespace = namespace
        self._dimensions = dict(dimensions)
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()

    def emit(self, values: Mapping[Metric | str, tuple[float, Unit]], **properties: str | int | float) -> str:
        """Emits several metrics in one line; properties (not dimensions) ride along for Logs Insights."""
        if not values:
            raise ValueError("emit() needs at least one metric")
        document: dict[str, object] = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [sorted(self._dimensions)],
                        "Metrics": [{"Name": str(name), "Unit": str(unit)} for name, (_, unit) in values.items()],
                    }
                ],
            },
            **self._dimensions,
        }
        for key, value in {**correlation.current(), **properties}.items():
            document.setdefault(key, value)
        for name, (value, _) in values.items():
            document[str(name)] = value
        line = json.dumps(document, separators=(",", ":"), sort_keys=True)
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()
        return line

    def count(self, name: Metric, value: float = 1, **properties: str | int | float) -> str:
        return self.emit({name: (value, Unit.COUNT)}, **properties)
