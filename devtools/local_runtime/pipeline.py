"""Runs lister → queue → five downloaders → summary on this machine, as AWS would run them.

What is real: the Lambda entry points (each handler's `handler(event, context)`, building its `App` from the
function's environment with `current_app()`), boto3 calls against a moto server (SQS with its redrive policy,
DynamoDB, S3, SNS, Secrets Manager), HTTP to the GoPro simulator. What is emulated (`lambda_emulation`): the
function's environment and context, the scheduler's event, the Lambda event source mapping (consumer threads that
poll, build Lambda-shaped SQS events, call the handler and delete only the records that succeeded), the lister's
asynchronous self-invocation (its context carries no function ARN, so it hands its continuation back and the
runtime invokes it again), and the "queue drained" alarm (the runtime watches the queue and calls the summary
handler with an alarm state-change event). One deliberate difference: a failed record becomes visible again after
`retry_delay` seconds instead of the queue's visibility timeout (90 minutes), so a demo does not wait.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from devtools.local_runtime.lambda_emulation import (
    LambdaContext,
    alarm_event,
    cold_start,
    function_arn,
    scheduled_event,
    sqs_record,
)
from devtools.local_runtime.provision import Provisioned, provision
from devtools.net import free_port
from pipeline import resources
from pipeline.app import App
from pipeline.aws_clients import clear_client_cache, make_client
from pipeline.clock import utc_now
from pipeline.config import Settings
from pipeline.credentials.model import CredentialsError, ProviderCredentials
from pipeline.handlers.downloader import handler as downloader_handler
from pipeline.handlers.lister import handler as lister_handler
from pipeline.handlers.summary import handler as summary_handler
from pipeline.providers.gopro.config import CREDENTIAL_VARIABLES, GoProEnv, GoProSettings
from pipeline.state import MediaStatus

log = logging.getLogger(__name__)

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}
LAMBDA_TIMEOUT_SECONDS = float(resources.DOWNLOADER_TIMEOUT_SECONDS)
DRAIN_ALARM = "gopro-sync-queue-drained"


@dataclass
class ConsumerStats:
    invocations: int = 0
    records: int = 0
    failed_records: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, records: int, failed: int) -> None:
        with self.lock:
            self.invocations += 1
            self.records += records
            self.failed_records += failed


@dataclass
class RunResult:
    run_id: str
    listing: dict[str, Any]
    report: dict[str, Any] | None
    report_text: str | None
    statuses: dict[str, int]
    dlq_depth: int
    drained: bool
    consumer_stats: ConsumerStats

    @property
    def ok(self) -> bool:
        """Every video enqueued in the run ended COMPLETED (deleted-at-source included), nothing in the DLQ."""
        completed = self.statuses.get(MediaStatus.COMPLETED.value, 0)
        unfinished = sum(v for k, v in self.statuses.items() if k != MediaStatus.COMPLETED.value)
        return (
            self.drained
            and not self.listing.get("error")
            and unfinished == 0
            and self.dlq_depth == 0
            and completed == self.listing.get("enqueued", 0)
        )


class LocalPipeline:
    def __init__(
        self,
        *,
        base_settings: Settings | None = None,
        aws_endpoint_url: str | None = None,
        api_url: str | None = None,
        simulator: Any = None,
        consumers: int = resources.DOWNLOADER_MAX_CONCURRENCY,
        batch_size: int = resources.DOWNLOADER_BATCH_SIZE,
        retry_delay: float = 1.0,
        settings_overrides: dict[str, Any] | None = None,
        lambda_timeout: float = LAMBDA_TIMEOUT_SECONDS,
        lister_timeout: float | None = None,
    ) -> None:
        """`simulator`: a GoProSimulator (started here if needed) or None to start a default one, unless
        `api_url` points at a GoPro-compatible API (then the GOPRO_* credentials of `base_settings` are used).
        `lambda_timeout`: each downloader invocation's time limit. `lister_timeout`: each listing invocation's
        (None: no limit, so a long local listing is never split into continuations)."""
        self._base = base_settings or Settings.from_env({})
        self._endpoint = aws_endpoint_url
        self._api_url = api_url
        self._sim = simulator
        self._consumers = consumers
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        self._overrides = settings_overrides or {}
        self._lambda_timeout = lambda_timeout
        self._lister_timeout = lister_timeout
        self._moto: Any = None
        self._own_sim = False
        self._saved_env: dict[str, str | None] = {}
        self.settings: Settings | None = None
        self.app: App | None = None
        self.resources: Provisioned | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> LocalPipeline:
        endpoint = self._endpoint or self._start_moto()
        if self._api_url is None:
            self._start_simulator()
        self._set_env({"AWS_ENDPOINT_URL": endpoint, **({} if self._endpoint else FAKE_AWS)})
        clear_client_cache()
        api_url = self._api_url or self._sim.base_url
        settings = self._base.with_overrides(aws_endpoint_url=endpoint).with_env(
            {GoProEnv.API_URL: api_url, GoProEnv.AUTH_URL: api_url}
        )
        names = resources.names_for(settings.environment)
        self.resources = provision(
            lambda service: make_client(service, settings), names, settings.aws_region, self._credentials()
        )
        self.settings = settings.with_overrides(
            table_name=self.resources.table,
            bucket_name=self.resources.bucket,
            queue_url=self.resources.queue_url,
            dlq_url=self.resources.dlq_url,
            topic_arn=self.resources.topic_arn,
            credentials_secret_id=self.resources.secret_id,
            local_mode=True,
            **self._overrides,
        ).with_env(dict.fromkeys(CREDENTIAL_VARIABLES))
        # The credentials now live in the (local) secret: the pipeline reads them as it would in AWS.
        # The App the handlers will use, built as a deployed function builds it (the tests reach into it).
        self.app = cold_start(self.settings)
        return self

    def stop(self) -> None:
        if self._own_sim and self._sim is not None:
            self._sim.stop()
        if self._moto is not None:
            self._moto.stop()
        clear_client_cache()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> LocalPipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def simulator(self) -> Any:
        return self._sim

    def client(self, service: str) -> Any:
        assert self.settings is not None
        return make_client(service, self.settings)

    # --- the run -------------------------------------------------------------------------------------------------

    def list(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """The lister, invoked as the scheduler would, then again for each continuation it asks for."""
        assert self.app is not None
        payload: dict[str, Any] = event or scheduled_event()
        totals: dict[str, Any] = {}
        try:
            while True:
                outcome = lister_handler(payload, self._context("lister", self._lister_timeout, arn=False))
                for key in ("listed", "enqueued", "already_archived"):
                    totals[key] = totals.get(key, 0) + outcome[key]
                totals["run_id"] = outcome["run_id"]
                if outcome["done"]:
                    return totals
                payload = {
                    "continuation": {
                        "run_id": outcome["run_id"],
                        "correlation_id": self.app.state.runs.get(outcome["run_id"]).correlation_id,  # type: ignore[union-attr]
                        "page": outcome["next_page"],
                    }
                }
        except Exception as exc:
            log.error("the lister failed: %s", exc)
            runs = self.app.state.runs.latest(1)
            return {**totals, "run_id": runs[0].run_id if runs else "", "error": f"{type(exc).__name__}: {exc}"}

    def drain(
        self, *, timeout: float = 600.0, progress: Callable[[], None] | None = None, poll: float = 0.25
    ) -> tuple[bool, ConsumerStats]:
        """Runs the consumers until the queue is empty and nothing is in flight (what the drain alarm sees)."""
        stats = ConsumerStats()
        stop = threading.Event()
        busy = [False] * self._consumers
        threads = self._start_consumers(stop, busy, stats)
        deadline = time.monotonic() + timeout
        quiet_checks = 0
        drained = False
        try:
            while time.monotonic() < deadline:
                time.sleep(poll)
                if progress:
                    progress()
                visible, in_flight = self._queue_depth()
                quiet_checks = quiet_checks + 1 if visible == 0 and in_flight == 0 and not any(busy) else 0
                if quiet_checks >= 3:
                    drained = True
                    break
        finally:
            stop.set()
            for thread in threads:
                thread.join(LAMBDA_TIMEOUT_SECONDS)
        return drained, stats

    def serve(self) -> Callable[[], ConsumerStats]:
        """Consumers that keep polling the queue until the returned function is called (it waits for them and
        returns their counts): the event source mapping of a local stack that stays up (`devtools.local_stack`)."""
        stats = ConsumerStats()
        stop = threading.Event()
        threads = self._start_consumers(stop, [False] * self._consumers, stats)

        def halt() -> ConsumerStats:
            stop.set()
            for thread in threads:
                thread.join(LAMBDA_TIMEOUT_SECONDS)
            return stats

        return halt

    def _start_consumers(
        self, stop: threading.Event, busy: list[bool], stats: ConsumerStats
    ) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._consume, args=(i, stop, busy, stats), name=f"consumer-{i}", daemon=True)
            for i in range(self._consumers)
        ]
        for thread in threads:
            thread.start()
        return threads

    def summarise(self) -> dict[str, Any]:
        assert self.app is not None
        return summary_handler(
            alarm_event(DRAIN_ALARM), self._context("summary", float(resources.SUMMARY_TIMEOUT_SECONDS))
        )

    def run(
        self,
        *,
        timeout: float = 600.0,
        progress: Callable[[], None] | None = None,
        after_listing: Callable[[LocalPipeline], None] | None = None,
    ) -> RunResult:
        listing = self.list()
        if after_listing:
            after_listing(self)
        drained, stats = (
            self.drain(timeout=timeout, progress=progress) if not listing.get("error") else (True, ConsumerStats())
        )
        summary = self.summarise() if drained else {"published": False}
        return self.result(listing, summary, drained, stats)

    def result(
        self, listing: dict[str, Any], summary: dict[str, Any], drained: bool, stats: ConsumerStats
    ) -> RunResult:
        assert self.app is not None
        run_id = listing.get("run_id", "")
        counts = self.app.state.media.count_by_status(run_id=run_id) if run_id else {}
        mine = [r for r in summary.get("runs", [summary]) if r.get("run_id", run_id) == run_id]
        report, text = (mine[0].get("report"), mine[0].get("text")) if mine else (None, None)
        run = self.app.state.runs.get(run_id) if run_id else None
        if report is None and run is not None and run.report_sent_at:
            # Published earlier (by the lister, on a night with nothing queued or a failed listing): show it.
            built = self.app.summary().build(run, now=utc_now())
            report, text = built.as_json(), built.body()
        return RunResult(
            run_id=run_id,
            listing=listing,
            report=report,
            report_text=text,
            statuses={status.value: n for status, n in counts.items()},
            dlq_depth=self.dlq_depth(),
            drained=drained,
            consumer_stats=stats,
        )

    def dlq_depth(self) -> int:
        assert self.settings is not None
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=self.settings.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    # --- internals -----------------------------------------------------------------------------------------------

    def _consume(self, index: int, stop: threading.Event, busy: list[bool], stats: ConsumerStats) -> None:
        assert self.app is not None
        assert self.settings is not None
        sqs = self.client("sqs")
        queue_url = self.settings.queue_url
        while not stop.is_set():
            try:
                answer = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=self._batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception as exc:
                log.warning("consumer %d could not poll: %s", index, exc)
                time.sleep(0.5)
                continue
            messages = answer.get("Messages", [])
            if not messages:
                continue
            busy[index] = True
            try:
                event = {"Records": [sqs_record(m, self.settings.aws_region) for m in messages]}
                response = downloader_handler(event, self._context("downloader", self._lambda_timeout))
                failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
                for message in messages:
                    if message["MessageId"] in failed:
                        # The event source mapping leaves a failed record to reappear after the visibility
                        # timeout; locally it reappears after retry_delay.
                        sqs.change_message_visibility(
                            QueueUrl=queue_url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=int(self._retry_delay),
                        )
                    else:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                stats.add(len(messages), len(failed))
            finally:
                busy[index] = False

    def _queue_depth(self) -> tuple[int, int]:
        assert self.settings is not None
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=self.settings.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def _start_moto(self) -> str:
        from devtools.moto_server import AtomicMotoServer

        port = free_port()
        self._moto = AtomicMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        return f"http://127.0.0.1:{port}"

    def _start_simulator(self) -> None:
        if self._sim is None:
            from devtools.gopro_simulator import GoProSimulator

            self._sim = GoProSimulator()
        if not _is_running(self._sim):
            self._sim.start()
            self._own_sim = True

    def _credentials(self) -> ProviderCredentials:
        if self._api_url is None:
            creds = self._sim.credentials
            return ProviderCredentials(
                refresh_token=creds.refresh_token, client_id=creds.client_id, client_secret=creds.client_secret
            )
        override = GoProSettings.of(self._base).credentials_override
        if not override.present:
            raise CredentialsError(  # the command line: GoPro credentials missing, exit 6
                "--api-url needs GoPro credentials: set GOPRO_ACCESS_TOKEN, or GOPRO_CLIENT_ID, "
                "GOPRO_CLIENT_SECRET and GOPRO_REFRESH_TOKEN"
            )
        return ProviderCredentials(
            access_token=override.access_token,
            refresh_token=override.refresh_token,
            client_id=override.client_id,
            client_secret=override.client_secret,
        )

    def _context(self, function: str, timeout: float | None, *, arn: bool = True) -> LambdaContext:
        """A new invocation's context. Without `arn` the function cannot invoke itself: the lister then returns
        its continuation, which `list` invokes it with (what Lambda's asynchronous invocation would do)."""
        assert self.settings is not None
        name = f"gopro-sync-{function}-{self.settings.environment}"
        return LambdaContext(
            function_name=name,
            invoked_function_arn=function_arn(self.settings.aws_region, name) if arn else None,
            timeout_seconds=timeout,
        )

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value


def _is_running(sim: Any) -> bool:
    try:
        return bool(sim.port)
    except Exception:
        return False


@contextmanager
def local_pipeline(**kwargs: Any) -> Iterator[LocalPipeline]:
    pipeline = LocalPipeline(**kwargs)
    pipeline.start()
    try:
        yield pipeline
    finally:
        pipeline.stop()
