"""The nightly listing: what in the cloud library is not yet archived, one SQS message per medium.

Costs are per page, not per video: one provider call, one BatchGetItem (100 keys) and ten SendMessageBatch calls
for 100 media. A library too large for one invocation stops between pages and reports where to continue, so
the handler can hand the rest to a fresh invocation instead of being cut off by the Lambda timeout.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Settings
from pipeline.messages import DownloadMessage
from pipeline.observability.metrics import Metric, MetricsEmitter, Unit
from pipeline.providers.base import CloudProvider, MediaItem, MediaType
from pipeline.providers.errors import InvalidMediaId
from pipeline.queueing import send_download_messages
from pipeline.state.models import MediaStatus
from pipeline.state.store import StateStore

log = logging.getLogger(__name__)


class SkipReason:
    NOT_A_VIDEO = "not_a_video"
    UNKNOWN_TYPE = "unknown_type"
    NOT_READY = "not_ready"
    INVALID_ID = "invalid_id"


@dataclass
class ListingOutcome:
    run_id: str
    listed: int = 0
    enqueued: int = 0
    already_archived: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    send_failures: list[str] = field(default_factory=list)
    next_page: int | None = None

    @property
    def done(self) -> bool:
        return self.next_page is None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "listed": self.listed,
            "enqueued": self.enqueued,
            "already_archived": self.already_archived,
            "skipped": dict(self.skipped),
            "send_failures": self.send_failures,
            "next_page": self.next_page,
            "done": self.done,
        }


class Lister:
    def __init__(
        self,
        *,
        settings: Settings,
        provider: CloudProvider,
        state: StateStore,
        sqs: Any,
        metrics: MetricsEmitter,
        remaining_ms: Callable[[], int] = lambda: 10**9,
        min_remaining_ms: int = 60_000,
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._state = state
        self._sqs = sqs
        self._metrics = metrics
        self._remaining_ms = remaining_ms
        self._min_remaining_ms = min_remaining_ms

    def run(self, *, run_id: str, correlation_id: str, start_page: int = 1) -> ListingOutcome:
        outcome = ListingOutcome(run_id=run_id)
        self._provider.ensure_authenticated(min_validity_seconds=self._settings.token_refresh_margin_seconds)
        seen: set[str] = set()
        for page in self._provider.iter_pages(start_page=start_page):
            fresh = [item for item in page.items if item.media_id not in seen]
            seen.update(item.media_id for item in fresh)
            page_outcome = self._handle_page(fresh, run_id=run_id, correlation_id=correlation_id)
            outcome.listed += page_outcome.listed
            outcome.enqueued += page_outcome.enqueued
            outcome.already_archived += page_outcome.already_archived
            outcome.skipped.update(page_outcome.skipped)
            outcome.send_failures.extend(page_outcome.send_failures)
            self._state.update_run(
                run_id,
                listed=page_outcome.listed,
                enqueued=page_outcome.enqueued,
                skipped=sum(page_outcome.skipped.values()),
            )
            last_page = page.total_pages is not None and page.page >= page.total_pages
            if not last_page and self._remaining_ms() < self._min_remaining_ms:
                outcome.next_page = page.page + 1
                log.info("stopping the listing after page %d to continue in a fresh invocation", page.page)
                break
        self._metrics.emit(
            {
                Metric.VIDEOS_LISTED: (outcome.listed, Unit.COUNT),
                Metric.VIDEOS_ENQUEUED: (outcome.enqueued, Unit.COUNT),
            }
        )
        return outcome

    def _handle_page(self, items: list[MediaItem], *, run_id: str, correlation_id: str) -> ListingOutcome:
        outcome = ListingOutcome(run_id=run_id, listed=len(items))
        wanted: list[MediaItem] = []
        for item in items:
            reason = self._skip_reason(item)
            if reason:
                outcome.skipped[reason] += 1
                log.info("skipping %s (%s, %s)", item.media_id, reason, item.raw_type or item.ready_state)
            else:
                wanted.append(item)
        if not wanted:
            return outcome
        records = self._state.batch_get(self._provider.name, [item.media_id for item in wanted])
        todo = []
        for item in wanted:
            record = records.get(item.media_id)
            if record is not None and record.status == MediaStatus.COMPLETED:
                outcome.already_archived += 1
            else:
                todo.append(item)
        messages = [self._message(item, run_id=run_id, correlation_id=correlation_id) for item in todo]
        if messages:
            report = send_download_messages(self._sqs, self._settings.queue_url, messages)
            outcome.enqueued = len(report.sent)
            for failure in report.failed:
                log.error("could not enqueue %s: %s %s", failure.media_id, failure.code, failure.message)
                outcome.send_failures.append(failure.media_id)
        return outcome

    def _skip_reason(self, item: MediaItem) -> str | None:
        try:
            self._provider.validate_media_id(item.media_id)
        except InvalidMediaId:
            return SkipReason.INVALID_ID
        if item.media_type is MediaType.UNKNOWN:
            return SkipReason.UNKNOWN_TYPE
        if not item.media_type.is_video and not self._settings.include_photos:
            return SkipReason.NOT_A_VIDEO
        if not item.ready:
            return SkipReason.NOT_READY  # still processing in the cloud: a later night takes it
        return None

    def _message(self, item: MediaItem, *, run_id: str, correlation_id: str) -> DownloadMessage:
        captured = item.captured_at.isoformat().replace("+00:00", "Z") if item.captured_at else None
        return DownloadMessage.create(
            run_id=run_id,
            correlation_id=correlation_id,
            provider=self._provider.name,
            media_id=item.media_id,
            filename=item.filename,
            size=item.size,
            captured_at=captured,
            media_type=item.media_type.value,
        )
