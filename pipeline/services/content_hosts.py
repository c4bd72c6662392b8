"""The hosts a run's download links point to, recorded on the run so an operator can pin them from facts.

Why: no public source names GoPro's content hosts (its pre-signed links have pointed at S3 and CloudFront names
that may change), so `ALLOWED_DOWNLOAD_HOSTS` cannot be shipped filled in. Instead every delivery records the
hosts its links point to in the run record (`store.runs.add_content_hosts`, a bounded string set); the run report
and `scripts/sync_status.py` show them, and docs/operations.md says how to pin them. Recorded before the download
policy is applied, so a host the pinned list refuses shows up too (the sign that GoPro moved its content).

Write cost: one UpdateItem the first time a warm downloader meets a host in a run, none after (`_seen`).
Best effort: whatever goes wrong with the write is logged and never fails a delivery (a record of where links
pointed is not worth one medium's retry).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.transfer.url_policy import content_host

log = logging.getLogger(__name__)

RUNS_REMEMBERED = 4  # a warm container may serve a few overlapping runs; older ones are forgotten


class ContentHostStore(Protocol):
    """What the recorder needs of `store.runs` (`pipeline.state.runs.RunState`)."""

    def add_content_hosts(self, run_id: str, hosts: Iterable[str]) -> bool: ...


class ContentHostRecorder:
    """Adds the hosts of download URLs to their run's record, each (run, host) once per process."""

    def __init__(self, runs: ContentHostStore) -> None:
        self._runs = runs
        self._seen: OrderedDict[str, set[str]] = OrderedDict()

    def record(self, run_id: str, urls: Iterable[str | None]) -> None:
        hosts = {host for host in map(content_host, urls) if host}
        seen = self._seen.setdefault(run_id, set())
        self._seen.move_to_end(run_id)
        while len(self._seen) > RUNS_REMEMBERED:
            self._seen.popitem(last=False)
        new = hosts - seen
        if not new:
            return
        log.info("download links of run %s point to %s", run_id, ", ".join(sorted(new)))
        try:
            self._runs.add_content_hosts(run_id, new)
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not record the content hosts of run %s: %s", run_id, exc)
            return
        except Exception:  # best effort (module docstring), but a defect here must be seen
            log.exception("recording the content hosts of run %s failed", run_id)
            return
        seen |= new  # refused (a full set, no such run) counts as recorded: asking again would be refused again
