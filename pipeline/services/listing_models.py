"""The nightly listing's values: what an invocation is asked, the cursor, tonight's plan, progress and outcome.

Why a module of its own, without I/O: these decide what a night reads and what it leaves behind (the high-water
mark, the reconcile date, a continued listing's progress), and each rule is cheaper to prove on plain values
than through a listing against the simulator. `pipeline.services.listing` does the reading and writing.

Two modes (`ListingPlan`): a *full* listing reads the whole library and checks every medium against the table;
an *incremental* one asks the provider only for media created after the high-water mark of the listing cursor
(`ListingCursor`). The cursor's periodic full reconcile (`Settings.full_reconcile_days`) catches whatever an
incremental night missed (docs/performance.md, "Listing").
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pipeline.clock import iso_utc, iso_utc_or_none, parse_iso_utc
from pipeline.errors import SyncError
from pipeline.observability import correlation
from pipeline.services.backlog import RECENT_RUNS, NightBudget
from pipeline.services.backlog import SkipReason as SkipReason  # re-exported: the listing's values live here
from pipeline.services.listing_notes import ListingNotes
from pipeline.state import RunRecord

log = logging.getLogger(__name__)

# Half a day of slack on the reconcile interval: the schedule fires at the same minute every night, so "seven days
# since the last reconcile" must not miss by a few seconds and slip to the eighth night.
RECONCILE_SLACK = timedelta(hours=12)


class ListingMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


class BadListerEvent(SyncError, ValueError):
    """An event the lister cannot act on (a malformed continuation): retrying it cannot help."""


def _iso(moment: datetime | None) -> str | None:
    # "auto", not milliseconds: a mark held one microsecond below a medium still processing must survive the
    # round trip through the cursor item.
    return iso_utc_or_none(moment, timespec="auto")


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_iso_utc(text)
    except ValueError:
        log.warning("ignoring an unreadable time in the listing cursor: %r", text)
        return None


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _text_or_none(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ListingRequest:
    """What one invocation is asked: start tonight's listing (`run_id` None), or continue run `run_id` at `page`.

    `correlation_id` None: none was chosen upstream, the service makes one.
    """

    run_id: str | None = None
    correlation_id: str | None = None
    page: int = 1
    force_full: bool = False

    @property
    def continued(self) -> bool:
        return self.run_id is not None

    @classmethod
    def from_event(cls, event: Any) -> ListingRequest:
        """From the scheduler's event (`{"full_reconcile": true}` forces a full listing) or from a continuation
        (`{"continuation": {"run_id", "correlation_id", "page"}}`); BadListerEvent for a malformed continuation."""
        if not isinstance(event, Mapping) or "continuation" not in event:
            return cls(
                correlation_id=correlation.correlation_id_from_event(event),
                force_full=isinstance(event, Mapping) and event.get("full_reconcile") is True,
            )
        cont = event["continuation"]
        if (
            not isinstance(cont, Mapping)
            or not isinstance(cont.get("run_id"), str)
            or not isinstance(cont.get("correlation_id"), str)
            or not isinstance(cont.get("page"), int)
            or cont["page"] < 1
        ):
            raise BadListerEvent("a continuation needs run_id, correlation_id (strings) and page (integer >= 1)")
        return cls(
            run_id=cont["run_id"],
            correlation_id=cont["correlation_id"] or correlation.correlation_id_from_event(event),
            page=cont["page"],
        )

    @staticmethod
    def continuation_event(run_id: str, correlation_id: str, page: int) -> dict[str, Any]:
        """The event that `from_event` reads back as the continuation of `run_id` at `page`."""
        return {"continuation": {"run_id": run_id, "correlation_id": correlation_id, "page": page}}


@dataclass(frozen=True)
class ListingPlan:
    """How tonight's listing reads the library: `newer_than` is the bound of an incremental listing."""

    mode: ListingMode = ListingMode.FULL
    newer_than: datetime | None = None

    @property
    def incremental(self) -> bool:
        return self.mode is ListingMode.INCREMENTAL


@dataclass
class ListingProgress:
    """What a listing has learnt so far; kept in the cursor while a listing is continued across invocations.

    `newest` is the newest `created_at` of the media it dealt with; `hold` the oldest `created_at` of a medium
    still processing in the cloud, which the next high-water mark must stay below (so the medium is listed again).
    """

    run_id: str
    mode: ListingMode
    newer_than: str | None = None
    started_at: str | None = None
    newest: str | None = None
    hold: str | None = None
    run_created: bool = False
    send_failures: int = 0
    listed: int = 0  # the entries the pages answered, readable or not (the library's size after a full walk)
    moves_cursor: bool = True  # False for a continuation whose start the cursor does not know
    notes: ListingNotes = field(default_factory=ListingNotes)
    # Tonight's budget and backlog; None until the night's first invocation has read the backlog.
    budget: NightBudget | None = None

    @classmethod
    def start(cls, plan: ListingPlan, *, now: datetime) -> ListingProgress:
        """A new listing following `plan`, started at `now`."""
        return cls(
            run_id=correlation.new_run_id(iso_utc(now)),
            mode=plan.mode,
            newer_than=iso_utc_or_none(plan.newer_than),
            started_at=iso_utc(now),
        )

    @classmethod
    def orphan(cls, run_id: str) -> ListingProgress:
        """A continuation the cursor does not know (started by an older version, or the cursor was reset): it is
        finished as a full listing whose run record exists, and it does not move the high-water mark."""
        return cls(run_id=run_id, mode=ListingMode.FULL, run_created=True, moves_cursor=False)

    def plan(self) -> ListingPlan:
        incremental = self.mode is ListingMode.INCREMENTAL
        return ListingPlan(self.mode, _parse(self.newer_than) if incremental else None)

    def absorb(self, outcome: ListingOutcome) -> None:
        """Fold one invocation's outcome in."""
        self.newest = _iso(_max(_parse(self.newest), outcome.newest_created_at))
        self.hold = _iso(_min(_parse(self.hold), outcome.hold_created_at))
        self.send_failures += len(outcome.send_failures)
        self.listed += outcome.listed + outcome.skipped[SkipReason.MALFORMED]

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mode": self.mode.value,
            "newer_than": self.newer_than,
            "started_at": self.started_at,
            "newest": self.newest,
            "hold": self.hold,
            "run_created": self.run_created,
            "send_failures": self.send_failures,
            "listed": self.listed,
            "moves_cursor": self.moves_cursor,
            "notes": self.notes.as_json(),
            "budget": self.budget.as_json() if self.budget is not None else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> ListingProgress | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("run_id"), str):
            return None
        mode = data.get("mode")
        return cls(
            run_id=data["run_id"],
            mode=ListingMode(mode) if mode in tuple(ListingMode) else ListingMode.FULL,
            newer_than=_text_or_none(data, "newer_than"),
            started_at=_text_or_none(data, "started_at"),
            newest=_text_or_none(data, "newest"),
            hold=_text_or_none(data, "hold"),
            run_created=bool(data.get("run_created", False)),
            send_failures=int(data.get("send_failures", 0) or 0),
            listed=int(data.get("listed", 0) or 0),
            moves_cursor=data.get("moves_cursor", True) is not False,
            notes=ListingNotes.from_json(data.get("notes")),
            budget=NightBudget.from_json(data.get("budget")),
        )


@dataclass(frozen=True)
class ListingCursor:
    """The provider's listing cursor, as stored in the state table.

    `high_water_mark`: the newest `created_at` every medium at or before which was dealt with by a completed
    listing. `last_full_reconcile_at`: when the last full listing that enqueued everything it had to started.
    `in_progress`: the state of a listing being continued in another invocation. `library_size` /
    `library_listed_at`: the media a complete full walk saw, and when. `recent_runs`: the last runs that created a
    record, newest last, whose pace measures the nightly budget (`backlog.measure_budget`). `backlog_clear_until`:
    until then an incremental night skips the PENDING query (nothing waits, no live message can expire before).
    """

    high_water_mark: datetime | None = None
    last_full_reconcile_at: datetime | None = None
    in_progress: ListingProgress | None = None
    library_size: int | None = None
    library_listed_at: str | None = None
    recent_runs: tuple[str, ...] = ()
    backlog_clear_until: str | None = (
        None  # before then no PENDING medium can be waiting (`NightBudget.clear_until`)
    )

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ListingCursor:
        data = data or {}
        return cls(
            high_water_mark=_parse(data.get("high_water_mark")),
            last_full_reconcile_at=_parse(data.get("last_full_reconcile_at")),
            in_progress=ListingProgress.from_json(data.get("in_progress")),
            library_size=data.get("library_size") if isinstance(data.get("library_size"), int) else None,
            library_listed_at=_text_or_none(data, "library_listed_at"),
            recent_runs=tuple(str(r) for r in data.get("recent_runs") or () if isinstance(r, str)),
            backlog_clear_until=_text_or_none(data, "backlog_clear_until"),
        )

    @property
    def library(self) -> dict[str, Any] | None:
        """The report's `library` facts: the library as last fully listed (None: never)."""
        if self.library_size is None or self.library_listed_at is None:
            return None
        return {"size": self.library_size, "listed_at": self.library_listed_at}

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "high_water_mark": _iso(self.high_water_mark),
            "last_full_reconcile_at": _iso(self.last_full_reconcile_at),
        }
        if self.library_size is not None:
            document["library_size"] = self.library_size
            document["library_listed_at"] = self.library_listed_at
        if self.recent_runs:
            document["recent_runs"] = list(self.recent_runs)
        if self.backlog_clear_until is not None:
            document["backlog_clear_until"] = self.backlog_clear_until
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
            return ListingPlan(ListingMode.FULL)
        if now - self.last_full_reconcile_at >= timedelta(days=reconcile_days) - RECONCILE_SLACK:
            return ListingPlan(ListingMode.FULL)
        return ListingPlan(ListingMode.INCREMENTAL, self.high_water_mark)

    def progress_for(self, request: ListingRequest, *, now: datetime, reconcile_days: int) -> ListingProgress:
        """The progress this invocation carries on: a new listing planned from the cursor, or the continued one
        the cursor holds (`ListingProgress.orphan` if it holds another, or none)."""
        if request.run_id is None:
            return ListingProgress.start(self.plan(now, reconcile_days, force_full=request.force_full), now=now)
        if self.in_progress is not None and self.in_progress.run_id == request.run_id:
            return self.in_progress
        log.warning("continuation of run %s without its progress in the cursor: full listing", request.run_id)
        return ListingProgress.orphan(request.run_id)

    def continuing(self, progress: ListingProgress) -> ListingCursor:
        """The cursor while `progress` is continued in another invocation: the marks unchanged."""
        return replace(self, in_progress=progress)

    def finished(self, progress: ListingProgress, *, now: datetime, hold_window: timedelta) -> ListingCursor:
        """The cursor after `progress` listed the library to its end.

        A listing that could not enqueue everything (send failures), or whose walk is incomplete (short pages,
        fewer media seen than the service counts), moves nothing and is no finished reconcile: the next night
        lists the same media again. Otherwise the mark becomes the newest `created_at` seen (never lower than
        before, never later than `now`), kept just below any medium still processing that was created within
        `hold_window` (older ones are left to the next reconcile, so one medium stuck in processing cannot make
        every night list everything after it).
        """
        recent = self.recent_runs
        if progress.run_created and progress.run_id not in recent:
            recent = (*recent, progress.run_id)[-RECENT_RUNS:]
        if progress.send_failures or not progress.moves_cursor or progress.notes.incomplete:
            return replace(self, in_progress=None, recent_runs=recent)
        newest = _parse(progress.newest)
        mark = _max(self.high_water_mark, min(newest, now) if newest is not None else None)
        hold = _parse(progress.hold)
        if mark is not None and hold is not None and hold <= mark and now - hold <= hold_window:
            mark = hold - timedelta(microseconds=1)
        reconciled = self.last_full_reconcile_at
        size, listed_at = self.library_size, self.library_listed_at
        if progress.mode is ListingMode.FULL:
            reconciled = _parse(progress.started_at) or reconciled
            size, listed_at = max(progress.notes.seen, progress.listed), progress.started_at or iso_utc(now)
        return ListingCursor(
            high_water_mark=mark,
            last_full_reconcile_at=reconciled,
            in_progress=None,
            library_size=size,
            library_listed_at=listed_at,
            recent_runs=recent,
            backlog_clear_until=self.backlog_clear_until,
        )


@dataclass
class ListingOutcome:
    """What one invocation (or one page of it) did; `next_page` is where a continuation starts (None: done)."""

    run_id: str
    mode: ListingMode = ListingMode.FULL
    listed: int = 0
    enqueued: int = 0
    already_archived: int = 0
    skipped: Counter[SkipReason] = field(default_factory=Counter)
    send_failures: list[str] = field(default_factory=list)
    next_page: int | None = None
    pages: int = 0
    newest_created_at: datetime | None = None
    hold_created_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.next_page is None

    def add(self, page: ListingOutcome) -> None:
        """Fold one page's outcome into the invocation's."""
        self.listed += page.listed
        self.enqueued += page.enqueued
        self.already_archived += page.already_archived
        self.skipped.update(page.skipped)
        self.send_failures.extend(page.send_failures)
        self.newest_created_at = _max(self.newest_created_at, page.newest_created_at)
        self.hold_created_at = _min(self.hold_created_at, page.hold_created_at)

    def saw(self, created_at: datetime | None, *, held: bool) -> None:
        """A medium created at `created_at` was dealt with, or (`held`) is still processing and holds the mark."""
        if held:
            self.hold_created_at = _min(self.hold_created_at, created_at)
        else:
            self.newest_created_at = _max(self.newest_created_at, created_at)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mode": self.mode.value,
            "listed": self.listed,
            "enqueued": self.enqueued,
            "already_archived": self.already_archived,
            "skipped": {str(reason): count for reason, count in self.skipped.items()},
            "send_failures": self.send_failures,
            "next_page": self.next_page,
            "done": self.done,
        }


@dataclass
class RunCounts:
    """Run counters not yet written to the run record (they are written every few pages, not every page)."""

    listed: int = 0
    enqueued: int = 0
    skipped: int = 0
    already_archived: int = 0

    def __bool__(self) -> bool:
        return bool(self.listed or self.enqueued or self.skipped or self.already_archived)

    def add(self, page: ListingOutcome) -> None:
        self.listed += page.listed
        self.enqueued += page.enqueued
        self.skipped += sum(page.skipped.values())
        self.already_archived += page.already_archived

    def take(self) -> dict[str, int]:
        """The counts (as the run record's counter names), leaving zero behind."""
        counts = {
            "listed": self.listed,
            "enqueued": self.enqueued,
            "skipped": self.skipped,
            "already_archived": self.already_archived,
        }
        self.listed = self.enqueued = self.skipped = self.already_archived = 0
        return counts


def should_report(run: RunRecord | None, progress: ListingProgress, quiet_nights: bool) -> bool:
    """Whether the listing reports the night itself: nothing was queued (no drain alarm will start the summary)
    and the night is one that reports (full, quiet nights asked for, failed, or with something to say)."""
    if run is None or run.enqueued:
        return False
    return (
        progress.mode is ListingMode.FULL
        or quiet_nights
        or bool(run.lister_error)
        or progress.notes.worth_reporting
    )
