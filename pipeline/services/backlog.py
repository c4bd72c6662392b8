"""Backfills that fit the queue: a night's byte budget, the media waiting for a later night, and what gets queued.

Why: a first backfill of tens of thousands of 4 GB videos cannot be downloaded before SQS drops its messages
(`resources.QUEUE_RETENTION_DAYS`); five downloaders at ~100 Mbit/s each move about 1,350 of them a day. So every
wanted medium gets a PENDING record when first listed (`store.media.register_pending`), a night queues only what
the downloaders can finish before the next one (`nightly_budget`), and the rest waits in the table, found again
the next night by one status-index Query (`read_backlog`), oldest first, whatever the listing mode.

One rule keeps a medium to one live message: its record notes the message when it is queued (`mark_queued`:
`queued_until` = now + the queue's retention) and a medium is never queued again while that is in the future. A
PENDING record past its `queued_until` means its message expired unprocessed: counted (`Metric.MESSAGES_EXPIRED`,
alarmed), and queued again.

The selection (`skip_reason`, `split_wanted`, `select`) is shared by the listing, which writes and sends, and by
the night plan (`pipeline.services.night_plan`), which only tells what tonight would do.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import resources
from pipeline.clock import iso_utc, parse_iso_utc
from pipeline.providers.base import CloudProvider, MediaItem, MediaType
from pipeline.providers.errors import InvalidMediaId
from pipeline.services.candidates import Candidate, register
from pipeline.state import MediaRecord, MediaStatus, RunRecord, StateStore

log = logging.getLogger(__name__)

# A downloader's throughput assumed before any run has measured one: 5 MB/s (40 Mbit/s), well under the
# ~100 Mbit/s the issue measured, so a first night never queues more than the downloaders can finish.
DEFAULT_PER_DOWNLOAD_BYTES_PER_SECOND = 5_000_000
# The schedule runs every 24 hours; the downloaders are counted on for 20 of them (the listing itself, a slow
# start, retries after a failure).
WORKING_HOURS = 20.0
# What a measured pace is trusted for: links that slow down, a CDN that caps a connection.
SAFETY_FACTOR = 0.8
# How many of the last runs (named in the listing cursor) the measured pace is the median of.
RECENT_RUNS = 5
# The status-index read of the waiting media stops here (far more than a night can queue).
MAX_BACKLOG_READ = 100_000


class SkipReason(StrEnum):
    NOT_A_VIDEO = "not_a_video"  # a kind the settings leave out (photos when photos are off, audio)
    EXCLUDED = "excluded"  # the provider's own settings leave it out (MediaItem.excluded, e.g. edits off)
    UNKNOWN_TYPE = "unknown_type"
    NOT_READY = "not_ready"
    INVALID_ID = "invalid_id"
    MALFORMED = "malformed"  # the provider's entry could not be read (ListingPage.skipped)


class BudgetSource(StrEnum):
    SETTING = "setting"  # NIGHTLY_BUDGET_BYTES
    MEASURED = "measured"  # the recent runs' pace
    DEFAULT = "default"  # no run has measured one yet


@dataclass(frozen=True)
class Budget:
    bytes: int
    source: BudgetSource


def per_download_throughput(runs: Iterable[RunRecord]) -> float | None:
    """Bytes a second one download moved: the median over `runs` of `bytes_transferred / transfer_seconds`
    (`transfer_seconds` sums each delivery's own time, so this is one downloader's pace); None without any run
    that transferred something."""
    paces = [
        r.bytes_transferred / r.transfer_seconds for r in runs if r.bytes_transferred and r.transfer_seconds > 0
    ]
    return statistics.median(paces) if paces else None


def nightly_budget(
    *,
    setting: int,
    throughput: float | None,
    concurrency: int = resources.DOWNLOADER_MAX_CONCURRENCY,
    hours: float = WORKING_HOURS,
    safety: float = SAFETY_FACTOR,
) -> Budget:
    """The bytes tonight may queue: `setting` when positive; else the pace one download keeps (`throughput`,
    bytes a second, or `DEFAULT_PER_DOWNLOAD_BYTES_PER_SECOND` without history) x the downloaders x the hours
    they are counted on x the safety factor."""
    if setting > 0:
        return Budget(setting, BudgetSource.SETTING)
    source = BudgetSource.MEASURED if throughput else BudgetSource.DEFAULT
    pace = throughput or DEFAULT_PER_DOWNLOAD_BYTES_PER_SECOND
    return Budget(max(1, int(pace * concurrency * hours * 3600 * safety)), source)


@dataclass
class NightBudget:
    """What tonight has spent of its budget and what waits, carried in the cursor while a listing is continued
    (so a continuation keeps the budget already spent). `budget_bytes` is measured on first need."""

    budget_bytes: int | None = None
    source: str | None = None
    spent_bytes: int = 0
    queued: int = 0
    queued_from_backlog: int = 0
    waiting: int = 0
    waiting_bytes: int = 0
    expired: int = 0
    full: bool = False  # a medium did not fit: everything after it waits too (the order is kept)
    live_until: str | None = None  # the earliest a PENDING medium's live message may expire (ISO, store clock)

    @property
    def measured(self) -> bool:
        return self.budget_bytes is not None

    def use(self, budget: Budget) -> None:
        self.budget_bytes, self.source = budget.bytes, budget.source.value

    def admits(self, cost: int) -> bool:
        """Whether a medium costing `cost` bytes fits; at least one medium a night, however large."""
        if self.budget_bytes is None:
            raise ValueError("the night's budget is not measured yet")
        if not self.full and (self.queued == 0 or self.spent_bytes + cost <= self.budget_bytes):
            return True
        self.full = True
        return False

    def spend(self, cost: int, *, from_backlog: bool) -> None:
        self.spent_bytes += cost
        self.queued += 1
        if from_backlog:
            self.queued_from_backlog += 1
            self.leave(cost)

    def refund(self, cost: int, *, from_backlog: bool) -> None:
        """A medium admitted but not sent: it waits again."""
        self.spent_bytes -= cost
        self.queued -= 1
        if from_backlog:
            self.queued_from_backlog -= 1
        self.wait(cost)

    def wait(self, cost: int) -> None:
        self.waiting += 1
        self.waiting_bytes += cost

    def leave(self, cost: int) -> None:
        self.waiting = max(0, self.waiting - 1)
        self.waiting_bytes = max(0, self.waiting_bytes - cost)

    def note_live(self, until: datetime) -> None:
        """A PENDING medium has a live message until `until`: the backlog must be read again by then."""
        known = parse_iso_utc(self.live_until) if self.live_until else None
        if known is None or until < known:
            self.live_until = iso_utc(until)

    def clear_until(self, now: datetime, previous: str | None, *, days: int) -> str | None:
        """Until when the next nights may skip the PENDING query (`ListingCursor.backlog_clear_until`): never
        while media wait; else until the earliest live message may expire; with none live, a week (or the
        reconcile interval) from `now`, kept as it was while still ahead so a quiet night writes nothing."""
        if self.waiting:
            return None
        if self.live_until is not None:
            return self.live_until
        if previous is not None and parse_iso_utc(previous) > now:
            return previous
        return iso_utc(now + timedelta(days=max(1, days)))

    def ends_at(self, now: datetime) -> str | None:
        """The date the waiting bytes should be done by at the budget's pace (None: nothing waits)."""
        if not self.waiting or not self.budget_bytes:
            return None
        nights = max(1, math.ceil(self.waiting_bytes / self.budget_bytes))
        return (now + timedelta(days=nights)).date().isoformat()

    def report_json(self, now: datetime) -> dict[str, Any]:
        """The report's `backlog` facts (`ListingNotes.report_json`)."""
        return {
            "waiting": self.waiting,
            "waiting_bytes": self.waiting_bytes,
            "queued_from_backlog": self.queued_from_backlog,
            "nightly_budget_bytes": self.budget_bytes or 0,
            "budget_source": self.source or BudgetSource.DEFAULT.value,
            "ends_at": self.ends_at(now),
            "expired": self.expired,
        }

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def pending_due(clear_until: str | None, now: datetime) -> bool:
        """Whether tonight reads the PENDING media (a full night always does)."""
        return clear_until is None or parse_iso_utc(clear_until) <= now

    @classmethod
    def from_json(cls, data: Any) -> NightBudget | None:
        if not isinstance(data, Mapping):
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in known})


@dataclass
class Backlog:
    """What waits in the table at the start of a night: media left IN_PROGRESS past their lease (their worker
    died), then PENDING media without a live message, oldest first; `expired` names those whose message expired
    unprocessed, `live` counts PENDING media whose message is still in the queue."""

    abandoned: list[Candidate] = field(default_factory=list)
    waiting: list[Candidate] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    live: int = 0
    live_until: datetime | None = None  # the earliest `queued_until` of the live ones

    @property
    def candidates(self) -> list[Candidate]:
        return [*self.abandoned, *self.waiting]


def read_backlog(state: StateStore, provider: str, *, pending: bool = True) -> Backlog:
    """The night's backlog through the status index (two Queries, no scan), against the store's clock.
    `pending` False: only the abandoned ones (the cursor says no PENDING medium can be waiting tonight)."""
    now = state.clock()
    backlog = Backlog(abandoned=[Candidate.from_record(r) for r in state.media.list_abandoned(provider=provider)])
    status = MediaStatus.PENDING
    records = state.media.list_by_status(status, MAX_BACKLOG_READ, provider=provider) if pending else []
    for record in records:
        if record.queued_live(now):
            assert record.queued_until is not None
            backlog.live += 1
            backlog.live_until = min(backlog.live_until or record.queued_until, record.queued_until)
            continue
        if record.message_expired(now):
            backlog.expired.append(record.media_id)
        backlog.waiting.append(Candidate.from_record(record))
    return backlog


def note_backlog(budget: NightBudget, backlog: Backlog) -> None:
    """Start tonight's waiting count from the backlog."""
    for candidate in backlog.candidates:
        budget.wait(candidate.cost)
    budget.expired += len(backlog.expired)
    if backlog.live_until is not None:
        budget.note_live(backlog.live_until)


def select(
    candidates: Iterable[Candidate],
    budget: NightBudget,
    *,
    from_backlog: bool,
    mark: Callable[[Candidate], bool | None] = lambda _c: True,
) -> list[Candidate]:
    """The candidates tonight queues, in order, until the budget is spent; the rest waits. `mark` claims a
    candidate's message (the listing's `try_mark`; the night plan claims nothing): False means a live message
    exists already, and the candidate is neither queued nor waiting; None that the write failed, and it waits.
    `from_backlog` candidates were counted waiting by `note_backlog`; new ones are counted when they wait."""
    admitted = []
    for candidate in candidates:
        if not budget.admits(candidate.cost):
            if not from_backlog:
                budget.wait(candidate.cost)
            continue
        marked = mark(candidate)
        if marked is False and from_backlog:
            budget.leave(candidate.cost)
        elif marked is None and not from_backlog:
            budget.wait(candidate.cost)
        if not marked:
            continue
        budget.spend(candidate.cost, from_backlog=from_backlog)
        admitted.append(candidate)
    return admitted


@dataclass
class WantedSplit:
    """A page's wanted media against their records: `new` (no record: tonight registers them), `restored`
    (recorded deleted at the source and listed again), `archived`, and `known` (a record the backlog deals with:
    PENDING, IN_PROGRESS, or FAILED, which is the operator's to redrive)."""

    new: list[MediaItem] = field(default_factory=list)
    restored: list[MediaItem] = field(default_factory=list)
    # FAILED since before the cut-off (`failed_retry_cutoff`): a full night gives them another try.
    failed_long_ago: list[MediaItem] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)  # new media whose PENDING record could not be written
    archived: int = 0
    known: int = 0


def try_mark(state: StateStore, provider: str, candidate: Candidate, *, run_id: str) -> bool | None:
    """`mark_queued`, None when the write failed: one write must not stop the night, and the medium, PENDING in
    the table, waits for a later night instead."""
    try:
        return state.media.mark_queued(
            provider, candidate.media_id, run_id=run_id, retention_days=resources.QUEUE_RETENTION_DAYS
        )
    except (ClientError, BotoCoreError) as exc:
        log.warning("could not mark %s queued (%s): it waits for a later night", candidate.media_id, exc)
        return None


def try_unmark(state: StateStore, provider: str, media_id: str, *, run_id: str) -> None:
    """`unmark_queued` after a send that failed; if that write fails too, the mark lapses with the retention and
    the medium is queued again then (counted as an expired message)."""
    try:
        state.media.unmark_queued(provider, media_id, run_id=run_id)
    except (ClientError, BotoCoreError) as exc:
        log.warning("could not unmark %s (%s)", media_id, exc)


def failed_retry_cutoff(now: datetime) -> datetime:
    """Media FAILED before this are tried again by a full night. A FAILED medium is the operator's to redrive
    while its DLQ message lives; once that message has outlived the DLQ's retention no redrive can bring it
    back, and a passing failure (an outage of days) would leave the video unarchived for good."""
    return now - timedelta(days=resources.DLQ_RETENTION_DAYS)


def split_wanted(
    wanted: Iterable[MediaItem], records: Mapping[str, MediaRecord], *, retry_failed_before: datetime | None = None
) -> WantedSplit:
    """`retry_failed_before`: media FAILED before it go to `failed_long_ago` (a full night); None: none do."""
    split = WantedSplit()
    for item in wanted:
        record = records.get(item.media_id)
        if record is None:
            split.new.append(item)
        elif record.status is MediaStatus.COMPLETED and not record.archived:
            split.restored.append(item)
        elif _failed_before(record, retry_failed_before):
            split.failed_long_ago.append(item)
        elif record.archived:
            split.archived += 1
        else:
            split.known += 1
    return split


def page_candidates(
    state: StateStore,
    provider: str,
    wanted: list[MediaItem],
    records: Mapping[str, MediaRecord],
    *,
    run_id: str,
    full: bool,
) -> tuple[WantedSplit, list[Candidate]]:
    """A listed page's wanted media against their records, and those of them tonight may queue: new ones (now
    registered PENDING), ones restored at the source, and, on a full night, ones FAILED before the cut-off
    (`failed_retry_cutoff`, put back to PENDING first). The rest the backlog deals with."""
    retry_before = failed_retry_cutoff(state.clock()) if full else None
    split = split_wanted(wanted, records, retry_failed_before=retry_before)
    registered = []
    for item in split.new:
        try:
            if register(state, provider, item, run_id=run_id):
                registered.append(item)
        except (ClientError, BotoCoreError) as exc:  # one write must not stop the night
            log.warning("could not record %s PENDING (%s): the next night lists it again", item.media_id, exc)
            split.unregistered.append(item.media_id)
    retried = [
        item
        for item in split.failed_long_ago
        if retry_before and state.media.retry_failed(provider, item.media_id, failed_before=retry_before)
    ]
    return split, [Candidate.from_item(item) for item in [*registered, *split.restored, *retried]]


def _failed_before(record: MediaRecord, cutoff: datetime | None) -> bool:
    failed = cutoff is not None and record.status is MediaStatus.FAILED and bool(record.sync_timestamp)
    return failed and iso_utc(cutoff) > str(record.sync_timestamp)  # ISO UTC times sort as the times they spell


def skip_reason(provider: CloudProvider, item: MediaItem, *, include_photos: bool) -> SkipReason | None:
    """Why the listing does not enqueue `item` (None: it does). Public because the archive audit and the night
    plan hold a listed medium to the very same rule (`scripts/audit_archive.py`)."""
    try:
        provider.validate_media_id(item.media_id)
    except InvalidMediaId:
        return SkipReason.INVALID_ID
    if item.media_type is MediaType.UNKNOWN:
        return SkipReason.UNKNOWN_TYPE
    if item.excluded:
        return SkipReason.EXCLUDED
    if item.media_type is MediaType.AUDIO or (item.media_type.is_photo and not include_photos):
        return SkipReason.NOT_A_VIDEO
    if not item.ready:
        return SkipReason.NOT_READY  # still processing in the cloud: a later night takes it
    return None


def measure_budget(state: StateStore, setting: int, recent_runs: Iterable[str]) -> Budget:
    """`nightly_budget` from the setting, or from the recent runs the cursor names (one GetItem each)."""
    if setting > 0:
        return nightly_budget(setting=setting, throughput=None)
    runs = [run for run in (state.runs.get(run_id) for run_id in recent_runs) if run is not None]
    return nightly_budget(setting=0, throughput=per_download_throughput(runs))
