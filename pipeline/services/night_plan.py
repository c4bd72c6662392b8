"""What tonight's listing would do, without doing it: no record written, no message sent.

Why: during a backfill an operator asks "what will tonight queue, how much waits, when does it end?" before the
schedule fires (and after changing `NIGHTLY_BUDGET_BYTES`). The answer must be the listing's own, so the plan
uses the very selection the listing uses (`pipeline.services.backlog`: skip reasons, the archived check, the
backlog oldest first, the budget), the mode from the same cursor, and the provider's same pages; it only claims
nothing (`backlog.select` without a `mark`) and registers nothing. The `plan` command prints `NightPlan.lines()`
(or `as_json()`); `App.night_planner()` builds the planner.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.clock import iso_utc_or_none, utc_now
from pipeline.config import Settings
from pipeline.providers.base import CloudProvider
from pipeline.services import backlog as bl
from pipeline.services.backlog import Candidate, NightBudget, SkipReason
from pipeline.services.listing_models import ListingCursor, ListingMode
from pipeline.services.report_text import size
from pipeline.state import StateStore

# The file names `lines()` spells out; the rest are counted.
MAX_NAMED = 50


@dataclass
class NightPlan:
    """What tonight would queue (`queued`: backlog first, then new media, in the listing's order) and leave."""

    now: datetime
    mode: ListingMode
    newer_than: datetime | None
    budget: NightBudget
    queued: list[tuple[Candidate, bool]] = field(default_factory=list)  # (medium, from the backlog)
    listed: int = 0
    already_archived: int = 0
    known: int = 0  # listed with a record the backlog deals with (PENDING, IN_PROGRESS, FAILED)
    live: int = 0  # PENDING with a message still in the queue
    skipped: Counter[str] = field(default_factory=Counter)
    continuing: str | None = None  # the run a listing under way is continuing

    @property
    def queued_bytes(self) -> int:
        return sum(candidate.cost for candidate, _ in self.queued)

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "newer_than": iso_utc_or_none(self.newer_than),
            "continuing": self.continuing,
            "listed": self.listed,
            "already_archived": self.already_archived,
            "known": self.known,
            "live": self.live,
            "skipped": dict(self.skipped),
            "would_queue": {
                "count": len(self.queued),
                "bytes": self.queued_bytes,
                "media": [
                    {
                        "media_id": c.media_id,
                        "filename": c.filename,
                        "size": c.size,
                        "from_backlog": from_backlog,
                    }
                    for c, from_backlog in self.queued
                ],
            },
            "backlog": self.budget.report_json(self.now),
        }

    def lines(self) -> list[str]:
        """The plan as a person reads it."""
        if self.mode is ListingMode.INCREMENTAL:
            mode = f"incremental (media created after {iso_utc_or_none(self.newer_than)})"
        else:
            mode = "full (the whole library, checked against the table)"
        budget = self.budget
        out = [f"Tonight: {mode} listing"]
        if self.continuing:
            out.append(f"  (a listing is under way: run {self.continuing}; this plans a fresh night)")
        out.append(f"Budget: {size(budget.budget_bytes or 0)} ({budget.source})")
        out.append(
            f"Would queue {len(self.queued)} media ({size(self.queued_bytes)}):"
            f" {budget.queued_from_backlog} waiting from earlier nights,"
            f" {len(self.queued) - budget.queued_from_backlog} new"
        )
        for candidate, from_backlog in self.queued[:MAX_NAMED]:
            origin = "waiting" if from_backlog else "new"
            out.append(f"  {candidate.filename} ({size(candidate.cost)}, {origin})")
        if len(self.queued) > MAX_NAMED:
            out.append(f"  ... and {len(self.queued) - MAX_NAMED} more")
        ends = budget.ends_at(self.now)
        waiting = f"Waiting after tonight: {budget.waiting} media ({size(budget.waiting_bytes)})"
        out.append(waiting + (f", done by about {ends}" if ends else ""))
        if budget.expired:
            out.append(f"Messages expired unprocessed: {budget.expired} (queued again, oldest first)")
        if self.live:
            out.append(f"Still in the queue from earlier nights: {self.live}")
        out.append(f"Listed: {self.listed}; already archived: {self.already_archived}")
        if self.skipped:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
            out.append(f"Skipped: {reasons}")
        return out


class NightPlanner:
    """Tonight's plan from the cursor, the table and the provider's listing: reads only."""

    def __init__(self, *, settings: Settings, provider: CloudProvider, state: StateStore) -> None:
        self._settings = settings
        self._provider = provider
        self._state = state

    def plan(self, now: datetime | None = None) -> NightPlan:
        now = now or utc_now()
        settings, name = self._settings, self._provider.name
        cursor = ListingCursor.from_json(self._state.cursors.get(settings.provider))
        listing = cursor.plan(now, settings.full_reconcile_days)
        budget = NightBudget()
        budget.use(bl.measure_budget(self._state, settings.nightly_budget_bytes, cursor.recent_runs))
        backlog = bl.read_backlog(self._state, name)
        bl.note_backlog(budget, backlog)
        plan = NightPlan(now=now, mode=listing.mode, newer_than=listing.newer_than, budget=budget)
        retry_before = bl.failed_retry_cutoff(now) if listing.mode is ListingMode.FULL else None
        plan.live = backlog.live
        plan.continuing = cursor.in_progress.run_id if cursor.in_progress else None
        plan.queued = [(c, True) for c in bl.select(backlog.candidates, budget, from_backlog=True)]
        self._provider.ensure_authenticated(min_validity_seconds=settings.token_refresh_margin_seconds)
        until = now if listing.incremental else None
        seen: set[str] = set()
        for page in self._provider.iter_pages(newer_than=listing.newer_than, until=until):
            fresh = [item for item in page.items if item.media_id not in seen]
            seen.update(item.media_id for item in fresh)
            plan.listed += len(fresh)
            plan.skipped[SkipReason.MALFORMED.value] += len(list(page.skipped_entries()))
            wanted = []
            for item in fresh:
                reason = bl.skip_reason(self._provider, item, include_photos=settings.include_photos)
                if reason:
                    plan.skipped[reason.value] += 1
                else:
                    wanted.append(item)
            if not wanted:
                continue
            records = self._state.media.batch_get(name, [i.media_id for i in wanted])
            split = bl.split_wanted(wanted, records, retry_failed_before=retry_before)
            plan.already_archived += split.archived
            plan.known += split.known
            candidates = [
                Candidate.from_item(item) for item in [*split.new, *split.restored, *split.failed_long_ago]
            ]
            plan.queued += [(c, False) for c in bl.select(candidates, budget, from_backlog=False)]
        plan.skipped = +plan.skipped  # drop the zero counts
        return plan
