"""Archives one medium per SQS record: claim it, stream its originals into S3, verify, record the outcome.

Failure policy, record by record (one bad record never stalls the batch):
- a poison message (unparseable, unknown schema, bad id, unknown provider) goes to the DLQ at once with its reason
  and is acknowledged, instead of burning three receives;
- a medium deleted at the source is COMPLETED with the note `source_deleted`;
- a transient failure releases the medium (PENDING) and reports the record as failed so SQS redelivers it; on the
  message's last receive the medium is recorded FAILED with the error before SQS moves the message to the DLQ;
- a claim DynamoDB will not take (throttling beyond every retry) is retried by SQS a minute later; on the last
  receive the medium is recorded FAILED without a lease, so its DLQ message and its record agree;
- a transfer that reaches the Lambda deadline while still making progress saves its multipart checkpoint and is
  re-enqueued as a fresh message, so slow-but-progressing transfers never spend their three receives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import resources
from pipeline.config import Settings
from pipeline.deadline import Deadline
from pipeline.messages import DownloadMessage, PoisonMessage, parse
from pipeline.observability import correlation
from pipeline.observability.metrics import Metric, MetricsEmitter, Unit
from pipeline.observability.redaction import redact
from pipeline.providers.base import CloudProvider
from pipeline.providers.errors import AuthError, InvalidMediaId, MediaNotFound
from pipeline.providers.registry import UnknownProvider
from pipeline.queueing import send_to_dead_letter
from pipeline.retry import RetryPolicy, call_with_retry
from pipeline.services.download_outcome import Disposition, RecordOutcome
from pipeline.services.medium_files import FileTransfer, MediumFiles, summarise
from pipeline.services.sidecar import SidecarWriter
from pipeline.sqs_delivery import SqsDelivery
from pipeline.state import NOTE_SOURCE_DELETED, ClaimOutcome, StateStore, TransitionRefusal
from pipeline.transfer.errors import DeadlineReached
from pipeline.transfer.model import TransferResult

log = logging.getLogger(__name__)

CONTINUATION_ATTRIBUTE = "continuations"
MAX_CONTINUATIONS = 24  # 24 x 15 min: a single file that needs six hours is not "progressing", it is stuck
LEASE_MARGIN_SECONDS = 60
# Time kept back from the Lambda deadline: a part that stalls may hold the transfer for a read timeout before
# it can stop, then the checkpoint and the continuation message must still be written.
DEADLINE_BOOKKEEPING_SECONDS = 15.0
# State writes that botocore's own retries could not get through (throttling) are retried briefly in the
# invocation: the claim (then the record is handed back to SQS), and the run counters (then they are given up).
STATE_WRITE_RETRY = RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=1.0)


@dataclass(frozen=True)
class Delivery:
    """One delivery being worked on: what SQS says about it, and the time the transfer may use. `message_id`
    doubles as the lease owner, so a redelivery of the same message resumes its own lease at once."""

    sqs: SqsDelivery
    deadline: Deadline | None

    @property
    def message_id(self) -> str:
        return self.sqs.message_id or "?"

    @property
    def receipt_handle(self) -> str | None:
        return self.sqs.receipt_handle

    @property
    def receive_count(self) -> int:
        return self.sqs.receive_count

    @property
    def owner(self) -> str:
        return self.message_id

    @property
    def last_try(self) -> bool:
        return self.receive_count >= resources.MAX_RECEIVE_COUNT


class Downloader:
    def __init__(
        self,
        *,
        settings: Settings,
        provider_for: Callable[[str], CloudProvider],
        state: StateStore,
        sqs: Any,
        transfer: FileTransfer,
        metrics: MetricsEmitter,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        sidecars: SidecarWriter | None = None,
    ) -> None:
        self._settings = settings
        self._provider_for = provider_for
        self._state = state
        self._sqs = sqs
        self._files = MediumFiles(
            transfer, state, lease_seconds=resources.DOWNLOADER_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS
        )
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._sidecars = sidecars
        self._lease_seconds = self._files.lease_seconds

    # --- one SQS record ----------------------------------------------------------------------------------------

    def process(self, sqs: SqsDelivery, *, deadline: Deadline | None = None) -> RecordOutcome:
        """Archive the medium `sqs` asks for; `deadline` is the invocation's (None: no time limit)."""
        delivery = Delivery(
            sqs, None if deadline is None else deadline.earlier_by(deadline_safety_seconds(self._settings))
        )
        with correlation.bind(correlation_id=sqs.correlation_id):
            try:
                message = parse(sqs.body)
                provider = self._provider_for(message.provider)
                provider.validate_media_id(message.media_id)
            except (PoisonMessage, InvalidMediaId, UnknownProvider) as exc:
                return self._poison(delivery, exc)
            with correlation.bind(
                correlation_id=message.correlation_id,
                run_id=message.run_id,
                media_id=message.media_id,
                provider=message.provider,
            ):
                return self._archive(message, provider, delivery)

    def _poison(self, delivery: Delivery, exc: Exception) -> RecordOutcome:
        reason = redact(str(exc))
        log.error("poison message %s: %s", delivery.message_id, reason)
        body = delivery.sqs.body
        send_to_dead_letter(
            self._sqs,
            self._settings.dlq_url,
            body if isinstance(body, str) else repr(body),
            reason=reason,
            original_message_id=delivery.message_id,
            receive_count=delivery.receive_count,
        )
        self._metrics.count(Metric.POISON_MESSAGES)
        return RecordOutcome(delivery.message_id, Disposition.POISON, error=reason)

    def _archive(self, message: DownloadMessage, provider: CloudProvider, delivery: Delivery) -> RecordOutcome:
        owner, message_id = delivery.owner, delivery.message_id
        try:
            claim = self._write(
                self._state.media.claim,
                message.provider,
                message.media_id,
                owner=owner,
                run_id=message.run_id,
                lease_seconds=self._lease_seconds,
                filename=message.filename,
                captured_at=message.captured_at,
                size=message.size,
            )
        except (ClientError, BotoCoreError) as exc:
            return self._claim_failed(message, delivery, exc)
        if claim.outcome is ClaimOutcome.ALREADY_COMPLETED:
            log.info("already archived; acknowledging a duplicate message")
            return RecordOutcome(message_id, Disposition.ALREADY_DONE, message.media_id)
        if claim.outcome is ClaimOutcome.LEASED_ELSEWHERE:
            log.info(
                "another worker holds %s until %s; dropping this duplicate",
                message.media_id,
                claim.lease_expires_at,
            )
            return RecordOutcome(message_id, Disposition.LEASED_ELSEWHERE, message.media_id)
        checkpoint = claim.record.checkpoint if claim.record else None
        started = self._clock()
        try:
            results = self._files.archive(message, provider, owner, checkpoint, delivery.deadline)
            if self._sidecars is not None:  # after the objects, before COMPLETED: it lists only what is there
                self._sidecars.write(message, provider, results)
        except MediaNotFound:
            return self._source_deleted(message, delivery)
        except DeadlineReached as stop:
            return self._continue_later(message, delivery, stop)
        except Exception as exc:  # every failure is reported per record; nothing escapes to fail the batch
            return self._failed(message, delivery, exc)
        return self._completed(message, delivery, results, self._clock() - started)

    # --- outcomes ------------------------------------------------------------------------------------------------

    def _completed(
        self, message: DownloadMessage, delivery: Delivery, results: list[TransferResult], duration: float
    ) -> RecordOutcome:
        owner, message_id = delivery.owner, delivery.message_id
        s3_key, size, checksum = summarise(results)
        written = self._write(
            self._state.media.complete,
            message.provider,
            message.media_id,
            owner=owner,
            s3_key=s3_key,
            size=size,
            checksum=checksum,
            duration_s=round(duration, 3),
        )
        if not written:
            # Another worker took the lease over (ours had expired); it records the outcome and counts it. The
            # object in S3 is complete and verified either way, so acknowledging is safe.
            log.warning("lost the lease of %s before recording it (%s)", message.media_id, written.refusal)
            return RecordOutcome(message_id, Disposition.ALREADY_DONE, message.media_id)
        transferred = [r for r in results if not r.skipped_existing]
        moved = sum(r.size for r in transferred)
        seconds = sum(r.duration_s for r in transferred)
        self._add_to_run(message.run_id, synced=1, bytes_transferred=moved, transfer_seconds=round(seconds, 3))
        values: dict[Metric | str, tuple[float, Unit]] = {
            Metric.VIDEOS_SYNCED: (1, Unit.COUNT),
            Metric.BYTES_TRANSFERRED: (moved, Unit.BYTES),
            Metric.TRANSFER_DURATION: (round(duration, 3), Unit.SECONDS),
        }
        if seconds > 0:
            values[Metric.TRANSFER_THROUGHPUT] = (round(moved * 8 / 1e6 / seconds, 3), Unit.MEGABITS_PER_SECOND)
        ttfb = [r.time_to_first_byte_s for r in transferred if r.time_to_first_byte_s is not None]
        if ttfb:
            values[Metric.TIME_TO_FIRST_BYTE] = (round(ttfb[0] * 1000, 1), Unit.MILLISECONDS)
        self._metrics.emit(values, s3_key=s3_key)
        log.info("archived %s (%d bytes in %d file(s)) as %s", message.media_id, size, len(results), s3_key)
        return RecordOutcome(message_id, Disposition.SYNCED, message.media_id)

    def _source_deleted(self, message: DownloadMessage, delivery: Delivery) -> RecordOutcome:
        owner, message_id = delivery.owner, delivery.message_id
        log.warning("%s was deleted at the source; recording it as such", message.media_id)
        self._write(
            self._state.media.complete,
            message.provider,
            message.media_id,
            owner=owner,
            s3_key=None,
            size=None,
            checksum=None,
            duration_s=None,
            note=NOTE_SOURCE_DELETED,
        )
        self._add_to_run(message.run_id, source_deleted=1)
        self._metrics.count(Metric.SOURCE_DELETED)
        return RecordOutcome(message_id, Disposition.SOURCE_DELETED, message.media_id)

    def _continue_later(
        self, message: DownloadMessage, delivery: Delivery, stop: DeadlineReached
    ) -> RecordOutcome:
        owner, message_id = delivery.owner, delivery.message_id
        continuations = delivery.sqs.int_attribute(CONTINUATION_ATTRIBUTE)
        if stop.checkpoint is None:
            # Too little time left to start anything: an ordinary failure, retried by SQS like any other.
            error = RuntimeError("the invocation had too little time left to start the transfer")
            return self._failed(message, delivery, error)
        if continuations >= MAX_CONTINUATIONS:
            error = RuntimeError(f"still unfinished after {continuations} continuations; giving up")
            return self._failed(message, delivery, error, final=True)
        # Progress is kept in the record; the lease is released so the new message can claim it at once.
        self._write(self._state.media.release, message.provider, message.media_id, owner=owner)
        self._sqs.send_message(
            QueueUrl=self._settings.queue_url,
            MessageBody=message.to_json(),
            MessageAttributes={
                **message.message_attributes(),
                CONTINUATION_ATTRIBUTE: {"DataType": "Number", "StringValue": str(continuations + 1)},
            },
        )
        log.info(
            "deadline near after %d bytes; continuing in a fresh message (#%d)", stop.bytes_done, continuations + 1
        )
        return RecordOutcome(message_id, Disposition.CONTINUED, message.media_id)

    def _claim_failed(self, message: DownloadMessage, delivery: Delivery, exc: Exception) -> RecordOutcome:
        """The claim could not be written (DynamoDB throttling that outlasted every retry): try again soon, and
        on the last receive record the medium FAILED anyway, so the DLQ message and the record agree."""
        message_id, media_id = delivery.message_id, message.media_id
        error = redact(f"{type(exc).__name__}: {exc}")
        if not delivery.last_try:
            log.warning(
                "could not claim %s (receive %d), SQS will retry: %s", media_id, delivery.receive_count, error
            )
            self._retry_soon(delivery)
            return RecordOutcome(message_id, Disposition.RETRY, media_id, error)
        log.error("could not claim %s on its last receive; recording it FAILED: %s", media_id, error)
        try:
            written = self._state.media.fail_unclaimed(
                message.provider, media_id, owner=delivery.owner, run_id=message.run_id, error=error
            )
        except (ClientError, BotoCoreError) as again:
            # Nothing more to do here: the message goes to the DLQ, and the next full listing finds the medium
            # still PENDING and queues it again.
            log.error("could not record %s FAILED either: %s", media_id, again)
            return RecordOutcome(message_id, Disposition.FAILED, media_id, error)
        if written:
            self._add_to_run(message.run_id, failed=1)
            self._metrics.count(Metric.VIDEOS_FAILED)
            return RecordOutcome(message_id, Disposition.FAILED, media_id, error)
        if written.refusal is TransitionRefusal.ALREADY_COMPLETED:
            return RecordOutcome(message_id, Disposition.ALREADY_DONE, media_id)
        log.info("%s is held by another worker (%s); leaving it to that one", media_id, written.refusal)
        return RecordOutcome(message_id, Disposition.LEASED_ELSEWHERE, media_id)

    def _failed(
        self, message: DownloadMessage, delivery: Delivery, exc: Exception, *, final: bool = False
    ) -> RecordOutcome:
        """FAILED on the last receive (or when `final`), else handed back to SQS for another try."""
        owner, message_id, receive_count = delivery.owner, delivery.message_id, delivery.receive_count
        error = redact(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, AuthError):
            self._metrics.count(Metric.AUTHENTICATION_FAILURES, reauth_required=int(exc.reauth_required))
        if final or delivery.last_try:
            log.error("giving up on %s after %d receives: %s", message.media_id, receive_count, error)
            self._write(self._state.media.fail, message.provider, message.media_id, owner=owner, error=error)
            self._add_to_run(message.run_id, failed=1)
            self._metrics.count(Metric.VIDEOS_FAILED)
            return RecordOutcome(message_id, Disposition.FAILED, message.media_id, error)
        log.warning("attempt %d of %s failed, SQS will retry: %s", receive_count, message.media_id, error)
        self._write(self._state.media.release, message.provider, message.media_id, owner=owner, error=error)
        self._add_to_run(message.run_id, retried=1)
        self._retry_soon(delivery)
        return RecordOutcome(message_id, Disposition.RETRY, message.media_id, error)

    def _write(self, write: Callable[..., Any], provider: str, media_id: str, **kwargs: Any) -> Any:
        """A state write retried briefly when DynamoDB throttles beyond botocore's own retries.

        Why: the record's outcome (COMPLETED, FAILED, PENDING) is the one write that must land; if it escaped as an
        error on the message's last receive, the message would reach the DLQ while the record stayed IN_PROGRESS
        under a lease nobody renews. Conditional refusals are answers, returned as they are.
        """
        return call_with_retry(
            lambda: write(provider, media_id, **kwargs),
            policy=STATE_WRITE_RETRY,
            retry_on=(ClientError, BotoCoreError),
            sleep=self._sleep,
            describe=f"{getattr(write, '__name__', 'state write')} of {media_id}",
        )

    def _add_to_run(self, run_id: str, **counters: Any) -> None:
        """Add to the run's counters once the medium's own state is written; a few quick retries, then give up.

        Why not let a throttling error escape: by now the medium is COMPLETED (or FAILED, or released), so failing
        the record would only spend a receive and, in AWS, wait out the 90-minute visibility timeout, to find the
        medium done and acknowledge it, and the counter would still be missing from the run's report.
        """
        try:
            call_with_retry(
                lambda: self._state.runs.update(run_id, **counters),
                policy=STATE_WRITE_RETRY,
                retry_on=(ClientError, BotoCoreError),
                sleep=self._sleep,
                describe=f"run counters of {run_id}",
            )
        except (ClientError, BotoCoreError) as exc:
            log.error("could not add %s to the counters of run %s: %s", counters, run_id, exc)

    def _retry_soon(self, delivery: Delivery) -> None:
        """Shortens the wait before SQS redelivers a failed record (the queue's visibility timeout is 90 min)."""
        if not delivery.receipt_handle:
            return
        delays = resources.RETRY_VISIBILITY_SECONDS
        delay = delays[min(delivery.receive_count, len(delays)) - 1]
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._settings.queue_url, ReceiptHandle=delivery.receipt_handle, VisibilityTimeout=delay
            )
        except Exception as exc:  # the retry still happens, only later
            log.warning("could not shorten the retry delay: %s", exc)


def deadline_safety_seconds(settings: Settings) -> float:
    """How long before the Lambda deadline a transfer must stop: a stalled read, then the bookkeeping."""
    return settings.http_read_timeout + DEADLINE_BOOKKEEPING_SECONDS
