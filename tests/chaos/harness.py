"""One chaos scenario's pipeline: the real local stack, with the fault, kill and bookkeeping hooks installed.

`ChaosRun` wraps a `LocalPipeline` (moto server + GoPro simulator over real HTTP, Lambda-like consumers) and adds:
- `aws`: botocore-level AWS faults on the pipeline's own clients (`aws_faults`);
- `kills`: kill points inside the downloader (`kill`), with the handler wrapped as a killable invocation;
- `ledger`: every upload the pipeline started, completed, aborted or checkpointed (`ledger`);
- `night()`: one nightly run (list, drain, summary); `next_night()`: the clocks move a day on first;
- `check()` / `verify()`: the invariants (`invariants`), after the scenario's last night.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from devtools.gopro_simulator import GoProSimulator
from devtools.local_runtime import LocalPipeline, RunResult
from devtools.local_runtime import pipeline as local_runtime
from devtools.local_runtime.pipeline import ConsumerStats
from pipeline.clock import utc_now
from pipeline.config import Settings
from tests.chaos.aws_faults import AwsFaults
from tests.chaos.invariants import InvariantChecker, Outcome
from tests.chaos.kill import KillSwitch
from tests.chaos.ledger import UploadLedger
from tests.chaos.secrets import simulator_secrets

log = logging.getLogger(__name__)
MIB = 1024 * 1024
# Small parts and quick engine retries, as the integration tests use: 5 MiB is S3's minimum part size.
FAST: dict[str, Any] = {
    "part_size_bytes": 5 * MIB,
    "multipart_threshold_bytes": 5 * MIB,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "retry_max_attempts": 3,
}
NIGHT_TIMEOUT = 120.0
DRAIN_POLL = 0.1
IDLE_POLL_SECONDS = 0.2


def _short_polls(sqs: Any, queue_url: str) -> None:
    """Consumers poll every 0.2 s instead of long-polling for 1 s: the same behaviour (an idle consumer waits, a
    visible message is taken), but a drain's consumer threads stop within 0.2 s, which saves about a second a
    night; over sixty scenarios that is the difference between a quick set and a slow one."""

    def no_wait(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if params.get("QueueUrl") == queue_url and params.get("WaitTimeSeconds"):
            params["WaitTimeSeconds"] = 0
            context["chaos_short_poll"] = True

    def idle(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("chaos_short_poll") and not parsed.get("Messages"):
            time.sleep(IDLE_POLL_SECONDS)

    sqs.meta.events.register("provide-client-params.sqs.ReceiveMessage", no_wait)
    sqs.meta.events.register("after-call.sqs.ReceiveMessage", idle)


class ChaosRun:
    def __init__(
        self,
        *,
        name: str,
        aws_endpoint_url: str,
        sim: GoProSimulator,
        patch: Callable[[Any, str, Any], None],
        consumers: int = 5,
        lambda_timeout: float | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.sim = sim
        extra: dict[str, Any] = {} if lambda_timeout is None else {"lambda_timeout": lambda_timeout}
        self.pipeline = LocalPipeline(
            base_settings=Settings.from_env({}),
            aws_endpoint_url=aws_endpoint_url,
            simulator=sim,
            consumers=consumers,
            retry_delay=0,
            settings_overrides={**FAST, **(overrides or {})},
            **extra,
        ).start()
        self.kills = KillSwitch()
        self.ledger = UploadLedger(self.kills)
        self.ledger.install(self.app, self.client)  # first: it must see a completion before a kill after it
        self.kills.install(self.app, self.client)
        patch(local_runtime, "downloader_handler", self.kills.wrap_handler(local_runtime.downloader_handler))
        self.aws = AwsFaults(self.client)
        _short_polls(self.client("sqs"), self.settings.queue_url)
        self.nights: list[RunResult] = []
        self.summary_errors: list[Exception] = []
        self.listed: set[str] = set()
        self.outcome: Outcome | None = None
        self.proof = False  # a deliberately broken pipeline: its violations are the point, not a failure
        self._shift = timedelta(0)

    @property
    def app(self) -> Any:
        assert self.pipeline.app is not None
        return self.pipeline.app

    @property
    def settings(self) -> Settings:
        assert self.pipeline.settings is not None
        return self.pipeline.settings

    def client(self, service: str) -> Any:
        """The pipeline's own cached client for `service` (hooks registered on it apply to the pipeline)."""
        return self.pipeline.client(service)

    # --- nights --------------------------------------------------------------------------------------------

    def night(
        self,
        *,
        after_listing: Callable[[LocalPipeline], None] | None = None,
        full: bool = False,
        timeout: float = NIGHT_TIMEOUT,
    ) -> RunResult:
        """One nightly run: the lister, the consumers until the queue drains, the summary. `full` asks for the
        full reconcile (the weekly one; otherwise a night after the first lists only what is new)."""
        ready = {m.id for m in self.sim.library if m.is_video_like and m.ready_to_view == "ready"}
        event = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}
        listing = self.pipeline.list({**event, "full_reconcile": True} if full else event)
        if not listing.get("error"):
            self.listed |= ready
        if after_listing is not None:
            after_listing(self.pipeline)
        if listing.get("error"):
            drained, stats = True, ConsumerStats()
        else:
            drained, stats = self.pipeline.drain(timeout=timeout, poll=DRAIN_POLL)
        summary: dict[str, Any] = {"published": False}
        if drained:
            try:
                summary = self.pipeline.summarise()
            except Exception as exc:  # the summary Lambda failed: its outcome is the scenario's to judge
                log.warning("the summary failed: %s", exc)
                self.summary_errors.append(exc)
        result = self.pipeline.result(listing, summary, drained, stats)
        self.nights.append(result)
        return result

    def next_night(self, *, days: int = 1, **kwargs: Any) -> RunResult:
        """`days` later (a day: leases of crashed workers have expired, access tokens and links too; more than
        `resources.QUEUE_RETENTION_DAYS`: every message sent before has expired as well)."""
        self._shift += timedelta(days=days)
        shift = self._shift
        self.app.state.clock = lambda: utc_now() + shift
        self.sim.advance_clock(days * 24 * 3600)
        return self.night(**kwargs)

    def drain(self, timeout: float = NIGHT_TIMEOUT) -> bool:
        drained, _stats = self.pipeline.drain(timeout=timeout, poll=DRAIN_POLL)
        return drained

    # --- invariants ----------------------------------------------------------------------------------------

    def secrets(self) -> set[str]:
        return simulator_secrets(self.sim)

    def check(self) -> Outcome:
        """The invariants after the scenario's last night (never raises: see `verify`)."""
        checker = InvariantChecker(self.pipeline, self.ledger, videos=sorted(self.listed), secrets=self.secrets())
        outcome = checker.check()
        for number, night in enumerate(self.nights, start=1):
            if not night.drained:
                outcome.violation(f"night {number}: the queue never drained")
        self.outcome = outcome
        return outcome

    def verify(self) -> Outcome:
        """`check`, failing the test with every violation found."""
        outcome = self.check()
        assert outcome.ok, f"{self.name}: invariants violated:\n  " + "\n  ".join(outcome.violations)
        return outcome

    def stop(self) -> None:
        self.pipeline.stop()
