"""The nightly listing: what in the cloud library is not yet archived, one SQS message per medium.

Costs are per page, not per video: one provider call, one BatchGetItem (100 keys) and ten SendMessageBatch calls
for 100 new media; the run's counters are written every `COUNTER_FLUSH_PAGES` pages, not every page. A library too
large for one invocation stops between pages and reports where to continue, so the handler can hand the rest to
a fresh invocation instead of being cut off by the Lambda timeout.

Two modes (`ListingPlan`): a *full* listing reads the whole library and checks every medium against the table;
an *incremental* one asks the provider only for media created after the high-water mark of the listing cursor
(`ListingCursor`), which on a night with nothing new is one provider call and no table access at all. The
cursor's periodic full reconcile (`Settings.full_reconcile_days`) catches whatever an incremental night missed
(docs/performance.md, "Listing").
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pipeline.clock import parse_iso_utc
from pipeline.config import Settings
from pipeline.messages import DownloadMessage
from pipeline.observability.metrics import Metric, MetricsEmitter, Unit
from pipeline.providers.base import CloudProvider, MediaItem, MediaType
from pipeline.providers.errors import InvalidMediaId
from pipeline.queueing import send_download_messages
from pipeline.state import MediaStatus, StateStore

log = logging.getLogger(__name__)

FULL = "full"
INCREMENTAL = "incremental"
# Run counters are flushed every this many pages (and always at the end of an invocation): one UpdateItem per
# page would be 0.01 AWS calls per listed medium on its own.
COUNTER_FLUSH_PAGES = 10
# A medium still processing in the cloud whose `ready_to_view` is one of these will become downloadable, so it
# keeps the high-water mark below itself; `failure` (and anything unknown) is left to the next full reconcile.
TRANSIENT_NOT_READY = frozenset({"loading", "registered", "transcoding", "processing", "uploading", "rendering"})
# Half a day of slack on the reconcile interval: the schedule fires at the same minute every night, so "seven days
# since the last reconcile" must not miss by a few seconds and slip to the eighth night.
RECONCILE_SLACK = timedelta(hours=12)


class SkipReason:
    NOT_A_VIDEO = "not_a_video"
    UNKNOWN_TYPE = "unknown_type"
    NOT_READY = "not_ready"
    INVALID_ID = "invalid_id"
    MALFORMED = "malformed"  # the provider's entry could not be read (ListingPage.skipped)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_iso_utc(text)
    except ValueError:
        log.warning("ignoring an unreadable time in the listing cursor: %r", text)
        return None


@dataclass(frozen=True)
class ListingPlan:
    """How tonight's listing reads the library: `newer_than` is the bound of an incremental listing."""

    mode: str = FULL
    newer_than: datetime | None = None

    @property
    def incremental(self) -> bool:
        return self.mode == INCREMENTAL


@dataclass
class ListingProgress:
    """What a listing has learnt so far; kept in the cursor while a listing is continued across invocations.

    `newest` is the newest `created_at` of the media it dealt with; `hold` the oldest `created_at` of a medium
    still processing in the cloud, which the next high-water mark must stay below (so the medium is listed again).
    """

    run_id: str
    mode: str
    newer_than: str | None = None
    started_at: str | None = None
    newest: str | None = None
    hold: str | None = None
    run_created: bool = False
    send_failures: int = 0
    moves_cursor: bool = True  # False for a continuation whose start the cursor does not know

    def plan(self) -> ListingPlan:
        return ListingPlan(self.mode, _parse(self.newer_than) if self.mode == INCREMENTAL else None)

    def absorb(self, outcome: ListingOutcome) -> None:
        """Fold one invocation's outcome in."""
        self.newest = _iso(_max(_parse(self.newest), outcome.newest_created_at))
        self.hold = _iso(_min(_parse(self.hold), outcome.hold_created_at))
        self.send_failures += len(outcome.send_failures)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "newer_than": self.newer_than,
            "started_at": self.started_at,
            "newest": self.newest,
            "hold": self.hold,
            "run_created": self.run_created,
            "send_failures": self.send_failures,
            "moves_cursor": self.moves_cursor,
        }

    @classmethod
    def from_json(cls, data: Any) -> ListingProgress | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("run_id"), str):
            return None
        mode = data.get("mode") if data.get("mode") in (FULL, INCREMENTAL) else FULL
        return cls(
            run_id=data["run_id"],
            mode=mode,
            newer_than=data.get("newer_than") if isinstance(data.get("newer_than"), str) else None,
            started_at=data.get("started_at") if isinstance(data.get("started_at"), str) else None,
            newest=data.get("newest") if isinstance(data.get("newest"), str) else None,
            hold=data.get("hold") if isinstance(data.get("hold"), str) else None,
            run_created=bool(data.get("run_created", False)),
            send_failures=int(data.get("send_failures", 0) or 0),
            moves_cursor=data.get("moves_cursor", True) is not False,
        )


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True)
class ListingCursor:
    """The provider's listing cursor (`store.cursors.get` / `put`).

    `high_water_mark`: the newest `created_at` every medium at or before which was dealt with by a completed
    listing. `last_full_reconcile_at`: when the last full listing that enqueued everything it had to started.
    `in_progress`: the state of a listing being continued in another invocation.
    """

    high_water_mark: datetime | None = None
    last_full_reconcile_at: datetime | None = None
    in_progress: ListingProgress | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ListingCursor:
        data = data or {}
        return cls(
            high_water_mark=_parse(data.get("high_water_mark")),
            last_full_reconcile_at=_parse(data.get("last_full_reconcile_at")),
            in_progress=ListingProgress.from_json(data.get("in_progress")),
        )

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "high_water_mark": _iso(self.high_water_mark),
            "last_full_reconcile_at": _iso(self.last_full_reconcile_at),
        }
        if self.in_progress is not None:
            document["in_progress"] = self.in_progress.as_json()
        return document

    def plan(self, now: datetime, reconcile_days: int, *, force_full: bool = False) -> ListingPlan:
        """Full when asked, when incremental listing is off (0 days), when there is no mark yet, or when the last
        full reconcile is `reconcile_days` old (minus `RECONCILE_SLACK`); otherwise incremental from the mark."""
        if (
            force_full
            or reconcile_days <= 0
            or self.high_water_mark is None
            or self.last_full_reconcile_at is None
        ):
            return ListingPlan(FULL)
        if now - self.last_full_reconcile_at >= timedelta(days=reconcile_days) - RECONCILE_SLACK:
            return ListingPlan(FULL)
        return ListingPlan(INCREMENTAL, self.high_water_mark)

    def finished(self, progress: ListingProgress, *, now: datetime, hold_window: timedelta) -> ListingCursor:
        """The cursor after `progress` listed the library to its end.

        A listing that could not enqueue everything (send failures) moves nothing: the next night lists the same
        media again. Otherwise the mark becomes the newest `created_at` seen (never lower than before), kept just
        below any medium still processing that was created within `hold_window` (older ones are left to the
        next reconcile, so one medium stuck in processing cannot make every night list everything after it).
        """
        if progress.send_failures or not progress.moves_cursor:
            return replace(self, in_progress=None)
        mark = _max(self.high_water_mark, _parse(progress.newest))
        hold = _parse(progress.hold)
        if mark is not None and hold is not None and hold <= mark and now - hold <= hold_window:
            mark = hold - timedelta(microseconds=1)
        reconciled = self.last_full_reconcile_at
        if progress.mode == FULL:
            reconciled = _parse(progress.started_at) or reconciled
        return ListingCursor(high_water_mark=mark, last_full_reconcile_at=reconciled, in_progress=None)


@dataclass
class ListingOutcome:
    run_id: str
    mode: str = FULL
    listed: int = 0
    enqueued: int = 0
    already_archived: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    send_failures: list[str] = field(default_factory=list)
    next_page: int | None = None
    pages: int = 0
    newest_created_at: datetime | None = None
    hold_created_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.next_page is None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "listed": self.listed,
            "enqueued": self.enqueued,
            "already_archived": self.already_archived,
            "skipped": dict(self.skipped),
            "send_failures": self.send_failures,
            "next_page": self.next_page,
            "done": self.done,
        }


@dataclass
class _Unflushed:
    """Run counters not yet written to the run record."""

    listed: int = 0
    enqueued: int = 0
    skipped: int = 0

    def add(self, page: ListingOutcome) -> None:
        self.listed += page.listed
        self.enqueued += page.enqueued
        self.skipped += sum(page.skipped.values())

    def take(self) -> dict[str, int]:
        counts = {"listed": self.listed, "enqueued": self.enqueued, "skipped": self.skipped}
        self.listed = self.enqueued = self.skipped = 0
        return counts


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
        ensure_run: Callable[[], None] = lambda: None,
    ) -> None:
        """`ensure_run` is called before the first write that needs the run record (a message or a counter):
        an incremental night creates its run only if it finds something."""
        self._settings = settings
        self._provider = provider
        self._state = state
        self._sqs = sqs
        self._metrics = metrics
        self._remaining_ms = remaining_ms
        self._min_remaining_ms = min_remaining_ms
        self._ensure_run = ensure_run
        self._run_id = ""
        self._unflushed = _Unflushed()

    def run(
        self,
        *,
        run_id: str,
        correlation_id: str,
        start_page: int = 1,
        plan: ListingPlan | None = None,
        finish_run: bool = False,
    ) -> ListingOutcome:
        """List from `start_page`. With `finish_run`, counters left at the end are not written here: the caller
        writes them with `listing_done` in one `store.runs.finish_listing` (they stay in `unflushed_counts`)."""
        plan = plan or ListingPlan()
        outcome = ListingOutcome(run_id=run_id, mode=plan.mode)
        self._run_id = run_id
        self._unflushed = _Unflushed()
        self._provider.ensure_authenticated(min_validity_seconds=self._settings.token_refresh_margin_seconds)
        seen: set[str] = set()
        try:
            for page in self._provider.iter_pages(start_page=start_page, newer_than=plan.newer_than):
                outcome.pages += 1
                fresh = [item for item in page.items if item.media_id not in seen]
                seen.update(item.media_id for item in fresh)
                page_outcome = self._handle_page(fresh, run_id=run_id, correlation_id=correlation_id)
                if page.skipped:
                    page_outcome.skipped[SkipReason.MALFORMED] += len(page.skipped)
                    log.warning(
                        "page %d: skipped %d unreadable entries: %s",
                        page.page,
                        len(page.skipped),
                        ", ".join(page.skipped),
                    )
                self._absorb(outcome, page_outcome)
                if outcome.pages % COUNTER_FLUSH_PAGES == 0:
                    self._flush()
                last_page = page.total_pages is not None and page.page >= page.total_pages
                if not last_page and self._remaining_ms() < self._min_remaining_ms:
                    outcome.next_page = page.page + 1
                    log.info("stopping the listing after page %d to continue in a fresh invocation", page.page)
                    break
        except BaseException:
            try:
                self._flush()
            except Exception:  # the listing's own error matters more than a counter
                log.exception("could not write the run counters after a failed listing")
            raise
        if not (finish_run and outcome.done):
            self._flush()
        self._metrics.emit(
            {
                Metric.VIDEOS_LISTED: (outcome.listed, Unit.COUNT),
                Metric.VIDEOS_ENQUEUED: (outcome.enqueued, Unit.COUNT),
            }
        )
        return outcome

    def unflushed_counts(self) -> dict[str, int]:
        """Counters not written yet (after `run(..., finish_run=True)` finished the listing)."""
        return self._unflushed.take()

    def _flush(self) -> None:
        if not (self._unflushed.listed or self._unflushed.enqueued or self._unflushed.skipped):
            return
        self._ensure_run()
        self._state.runs.update(self._run_id, **self._unflushed.take())

    def _absorb(self, outcome: ListingOutcome, page: ListingOutcome) -> None:
        outcome.listed += page.listed
        outcome.enqueued += page.enqueued
        outcome.already_archived += page.already_archived
        outcome.skipped.update(page.skipped)
        outcome.send_failures.extend(page.send_failures)
        outcome.newest_created_at = _max(outcome.newest_created_at, page.newest_created_at)
        outcome.hold_created_at = _min(outcome.hold_created_at, page.hold_created_at)
        self._unflushed.add(page)

    def _handle_page(self, items: list[MediaItem], *, run_id: str, correlation_id: str) -> ListingOutcome:
        outcome = ListingOutcome(run_id=run_id, listed=len(items))
        wanted: list[MediaItem] = []
        for item in items:
            reason = self._skip_reason(item)
            if reason == SkipReason.NOT_READY and item.ready_state.lower() in TRANSIENT_NOT_READY:
                outcome.hold_created_at = _min(outcome.hold_created_at, item.created_at)
            else:
                outcome.newest_created_at = _max(outcome.newest_created_at, item.created_at)
            if reason:
                outcome.skipped[reason] += 1
                log.info("skipping %s (%s, %s)", item.media_id, reason, item.raw_type or item.ready_state)
            else:
                wanted.append(item)
        if not wanted:
            return outcome
        records = self._state.media.batch_get(self._provider.name, [item.media_id for item in wanted])
        todo = []
        for item in wanted:
            record = records.get(item.media_id)
            if record is not None and record.status == MediaStatus.COMPLETED:
                outcome.already_archived += 1
            else:
                todo.append(item)
        messages = [self._message(item, run_id=run_id, correlation_id=correlation_id) for item in todo]
        if messages:
            self._ensure_run()  # a downloader adds to the run's counters: it must exist before any message
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
