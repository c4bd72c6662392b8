"""Run records, the latest-run pointer, and the exactly-once claim on a run's report.

Design choices, and why:
- **Counters are atomic ADDs.** The lister's invocations and every downloader add to the same run; nobody
  overwrites, so no increment is lost to a race. A counter for a run that does not exist creates nothing.
- **`latest-run#<provider>` names each provider's newest run**, so the summary's question on every drain is two
  GetItems instead of a Scan of the whole table. It is moved only forward (`not_later_run_than`).
- **One report per run**: `claim_report` is a conditional write only one caller wins; a claim whose summary died
  goes stale and may be taken over; `mark_report_sent` closes the run's report for good.
- **Content hosts are a string set, ADDed to** (`add_content_hosts`): every downloader adds the hosts its links
  pointed to, nobody overwrites; the write is refused once the set holds `MAX_CONTENT_HOSTS`, so hostile answers
  naming a new host per medium cannot grow the run record towards DynamoDB's item limit.
- **`unreported-runs#<provider>` is a string set of the runs whose report is not sent yet**: `create` ADDs the
  run, `mark_report_sent` DELETEs it. The drain alarm reports every run in it whose listing is done (two
  overlapping runs each get their own report), in one GetItem plus one per run instead of a Scan.
- **Media found leased by another run's worker are kept by id** (`add_leased_elsewhere`, a bounded string set
  beside the counter): the report looks them up (one BatchGetItem) to tell a finished medium from one still
  on its way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from pipeline import resources
from pipeline.clock import iso_utc
from pipeline.state import conditions as c
from pipeline.state.backend import Table
from pipeline.state.expressions import BeginsWith, Compare, Condition, Exists, SizeBelow, Update
from pipeline.state.items import aware_utc, run_from_data, truncate_error
from pipeline.state.models import RUN_COUNTERS, Attr, RunRecord, StateStoreError

log = logging.getLogger(__name__)

# The item that names each provider's newest run (`latest-run#gopro`). Not `run#...`: the scan in `latest` must
# never mistake it for a run.
LATEST_RUN_KEY_PREFIX = "latest-run"
# The item whose string set names the runs not reported yet (`unreported-runs#gopro`).
UNREPORTED_RUNS_KEY_PREFIX = "unreported-runs"
# At most this many media ids found leased elsewhere are kept per run (beyond it they count as not finished).
MAX_LEASED_ELSEWHERE_IDS = 500
# A summary that claimed a run's report but died before marking it sent can be taken over after this long.
DEFAULT_REPORT_CLAIM_STALE_SECONDS = 900
# At most this many content hosts are kept per run (a real library's links use a handful).
MAX_CONTENT_HOSTS = 20
# The listing's notes are bounded where they are made (20 names each); this only keeps the item small whatever.
MAX_NOTES_CHARS = 16_000


class RunState:
    """Run records over a state table (see the module docstring)."""

    def __init__(self, table: Table, now: Callable[[datetime | None], datetime]) -> None:
        self._table = table
        self._now = now

    def create(self, run_id: str, *, correlation_id: str, started_at: datetime | str, provider: str) -> bool:
        """Create the run record with zeroed counters. False when it already exists (a continued listing)."""
        started = iso_utc(aware_utc(started_at)) if isinstance(started_at, datetime) else started_at
        item = {
            Attr.RUN_ID: run_id,
            Attr.PROVIDER: provider,
            Attr.CORRELATION_ID: correlation_id,
            Attr.STARTED_AT: started,
            Attr.LISTING_DONE: False,
            **dict.fromkeys(RUN_COUNTERS, 0),
        }
        if not self._table.put(resources.run_key(run_id), item, condition=c.key_not_exist()):
            log.info("run %s already exists", run_id)
            return False
        log.info("created run %s (correlation %s)", run_id, correlation_id)
        self._point_latest(provider, run_id, started)
        u = Update()
        u.add(Attr.UNREPORTED, frozenset({run_id}))
        self._table.update(self._unreported_key(provider), u)
        return True

    @staticmethod
    def _unreported_key(provider: str) -> str:
        return f"{UNREPORTED_RUNS_KEY_PREFIX}{resources.KEY_SEPARATOR}{provider}"

    def unreported(self, provider: str, limit: int) -> list[RunRecord]:
        """The newest `limit` runs of `provider` whose report is not sent yet, oldest first (one GetItem, then
        one per run). Runs that were reported or no longer exist are dropped from the set on the way."""
        pointer = self._table.get(self._unreported_key(provider), consistent=True)
        ids = sorted((str(i) for i in (pointer or {}).get(Attr.UNREPORTED) or ()), reverse=True)[:limit]
        runs: list[RunRecord] = []
        gone: set[str] = set()
        for run_id in ids:
            run = self.get(run_id)
            if run is None or run.report_sent_at:
                gone.add(run_id)
            else:
                runs.append(run)
        if gone:
            self.forget_unreported(provider, gone)
        runs.sort(key=lambda run: (run.started_at, run.run_id))
        return runs

    def forget_unreported(self, provider: str, run_ids: set[str]) -> None:
        """Take runs out of the provider's set of unreported runs (reported, gone, or too old to report)."""
        u = Update()
        u.delete(Attr.UNREPORTED, frozenset(run_ids))
        self._table.update(self._unreported_key(provider), u, condition=c.item_exists())

    @staticmethod
    def _latest_key(provider: str) -> str:
        return f"{LATEST_RUN_KEY_PREFIX}{resources.KEY_SEPARATOR}{provider}"

    def _point_latest(self, provider: str, run_id: str, started: str) -> None:
        """Make `latest-run#<provider>` name this run unless it already names a later one (runs created out of
        order, or a slow continuation, never move the pointer back)."""
        u = Update()
        u.set(Attr.RUN_ID, run_id)
        u.set(Attr.STARTED_AT, started)
        if not self._table.update(self._latest_key(provider), u, condition=c.not_later_run_than(started, run_id)):
            log.info("run %s is not the latest of %s; pointer kept", run_id, provider)

    def update(
        self,
        run_id: str,
        *,
        lister_error: str | None = None,
        listing_done: bool | None = None,
        now: datetime | None = None,
        leased_elsewhere_id: str | None = None,
        **counters: float,
    ) -> bool:
        """Add to the run's counters (keywords named in RUN_COUNTERS) and set `lister_error` / `listing_done` when
        given. Returns False if the run does not exist (nothing is created: a stray counter must not invent a
        run). `leased_elsewhere_id`: a medium this run found leased by another run's worker, kept in the run's
        bounded set in the same write (once the set is full only the counters are added)."""
        if leased_elsewhere_id is not None and self._add_leased_elsewhere(run_id, leased_elsewhere_id, counters):
            return True
        exists, _ = self._update(
            run_id, counters, lister_error=lister_error, listing_done=listing_done, now=now, returning=False
        )
        return exists

    def finish_listing(
        self,
        run_id: str,
        *,
        lister_error: str | None = None,
        notes: str | None = None,
        now: datetime | None = None,
        **counters: float,
    ) -> RunRecord | None:
        """The lister's last write of a run: its remaining counters, `listing_done` and its `notes` (JSON for the
        report), in one UpdateItem that answers with the whole record (so deciding whether to report needs no
        second read). None if the run does not exist."""
        _, record = self._update(
            run_id, counters, lister_error=lister_error, listing_done=True, now=now, returning=True, notes=notes
        )
        return record

    def _update(
        self,
        run_id: str,
        counters: Mapping[str, float],
        *,
        lister_error: str | None,
        listing_done: bool | None,
        now: datetime | None,
        returning: bool,
        notes: str | None = None,
    ) -> tuple[bool, RunRecord | None]:
        """`update` and `finish_listing`: (whether the run exists, the updated record when `returning`)."""
        u = _counter_update(counters)
        if lister_error is not None:
            u.set(Attr.LISTER_ERROR, truncate_error(lister_error))
        if notes is not None:
            u.set(Attr.LISTING_NOTES, notes[:MAX_NOTES_CHARS])
        if listing_done is not None:
            u.set(Attr.LISTING_DONE, bool(listing_done))
            if listing_done:
                u.set(Attr.LISTING_DONE_AT, iso_utc(self._now(now)))
        if not u:
            return True, None
        result = self._table.update(resources.run_key(run_id), u, condition=c.item_exists(), return_new=returning)
        if not result.applied:
            log.warning("update of run %s: it does not exist", run_id)
            return False, None
        return True, run_from_data(result.item) if result.item else None

    def _add_leased_elsewhere(self, run_id: str, media_id: str, counters: Mapping[str, float]) -> bool:
        """The counters and the id in one UpdateItem, if the run exists and its set has room."""
        u = _counter_update(counters)
        u.add(Attr.LEASED_ELSEWHERE_IDS, frozenset({media_id}))
        ids = Attr.LEASED_ELSEWHERE_IDS
        room = Exists(ids, present=False) | SizeBelow(ids, MAX_LEASED_ELSEWHERE_IDS)
        return self._table.update(resources.run_key(run_id), u, condition=c.item_exists() & room).applied

    def add_content_hosts(self, run_id: str, hosts: Iterable[str]) -> bool:
        """Add `hosts` to the run's set of content hosts (one UpdateItem). False when the run does not exist or
        its set is already full. Bounded: a write adds at most `MAX_CONTENT_HOSTS` and is refused once the set
        holds as many, so the set never exceeds twice that."""
        wanted = frozenset(sorted(set(hosts))[:MAX_CONTENT_HOSTS])
        if not wanted:
            return True
        u = Update()
        u.add(Attr.CONTENT_HOSTS, wanted)
        room = Exists(Attr.CONTENT_HOSTS, present=False) | SizeBelow(Attr.CONTENT_HOSTS, MAX_CONTENT_HOSTS)
        if not self._table.update(resources.run_key(run_id), u, condition=c.item_exists() & room):
            log.info("content hosts of run %s not recorded (no such run, or a full set)", run_id)
            return False
        return True

    def get(self, run_id: str) -> RunRecord | None:
        item = self._table.get(resources.run_key(run_id), consistent=True)
        return run_from_data(item) if item else None

    def latest(self, n: int = 1, *, provider: str | None = None) -> list[RunRecord]:
        """The `n` most recent runs by `started_at`, newest first.

        The latest run of one provider (what the summary asks for on every drain) is two GetItems through the
        `latest-run#<provider>` pointer that `create` keeps. Anything else (several runs, every provider, a
        table from before the pointer) is a paginated Scan filtered on the `run#` key prefix: a full read of the
        table (about 1 read unit per 8 KB, eventually consistent), fine for an operator's status command.
        """
        if n <= 0:
            return []
        if n == 1 and provider is not None:
            latest = self._latest(provider)
            if latest is not None:
                return [latest]
        where: Condition = BeginsWith(Attr.PK, resources.run_key(""))
        if provider is not None:
            where = where & Compare(Attr.PROVIDER, "=", provider)
        runs = [run_from_data(item) for item in self._table.scan(where)]
        runs.sort(key=lambda run: (run.started_at, run.run_id), reverse=True)
        return runs[:n]

    def _latest(self, provider: str) -> RunRecord | None:
        pointer = self._table.get(self._latest_key(provider), consistent=True)
        run_id = pointer.get(Attr.RUN_ID) if pointer else None
        if not isinstance(run_id, str):
            return None
        run = self.get(run_id)
        if run is None:
            log.warning("the latest-run pointer of %s names a missing run %s; scanning", provider, run_id)
        return run

    def claim_report(
        self,
        run_id: str,
        *,
        now: datetime | None = None,
        stale_after_seconds: float = DEFAULT_REPORT_CLAIM_STALE_SECONDS,
    ) -> bool:
        """True for exactly one caller per run: the one that must publish the report.

        A conditional write on the run record: no report sent yet, and no claim, or a claim older than
        `stale_after_seconds` (its summary died before publishing; a later alarm may take over). After publishing,
        call `mark_report_sent`; from then on every claim is refused. False as well when the run does not exist.
        """
        moment = self._now(now)
        stale = iso_utc(moment - timedelta(seconds=stale_after_seconds))
        u = Update()
        u.set(Attr.REPORT_CLAIMED_AT, iso_utc(moment))
        condition = c.item_exists() & c.report_not_sent() & c.report_unclaimed_or_stale(stale)
        if not self._table.update(resources.run_key(run_id), u, condition=condition):
            log.info("report for run %s already claimed or sent", run_id)
            return False
        log.info("claimed the report of run %s", run_id)
        return True

    def release_report_claim(self, run_id: str) -> None:
        """Give a claimed report back (its publish failed), so the summary's retry can send it at once instead
        of waiting for the claim to go stale. Does nothing once the report was sent."""
        u = Update()
        u.remove(Attr.REPORT_CLAIMED_AT)
        self._table.update(resources.run_key(run_id), u, condition=c.item_exists() & c.report_not_sent())

    def mark_report_sent(self, run_id: str, *, now: datetime | None = None, provider: str | None = None) -> None:
        """Record that the report was published: no later `claim_report` for this run succeeds; with `provider`,
        the run leaves the provider's set of unreported runs too."""
        u = Update()
        u.set(Attr.REPORT_SENT_AT, iso_utc(self._now(now)))
        if not self._table.update(resources.run_key(run_id), u, condition=c.item_exists()):
            raise StateStoreError(f"run {run_id} does not exist")
        if provider:
            self.forget_unreported(provider, {run_id})


def _counter_update(counters: Mapping[str, float]) -> Update:
    """An Update that ADDs each non-zero counter (named in RUN_COUNTERS: a typo must not create an attribute)."""
    unknown = set(counters) - set(RUN_COUNTERS)
    if unknown:
        raise ValueError(f"unknown run counters: {', '.join(sorted(unknown))}")
    u = Update()
    for name, amount in counters.items():
        if amount:
            u.add(name, amount)
    return u
