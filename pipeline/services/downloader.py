"""Archives one medium per SQS record: claim it, stream its originals into S3, verify, record the outcome.

Failure policy, record by record (one bad record never stalls the batch):
- a poison message (unparseable, unknown schema, bad id, unknown provider) goes to the DLQ at once with its reason
  and is acknowledged, instead of burning three receives;
- a medium deleted at the source is COMPLETED with the note `source_deleted`, but only once the deletion is
  confirmed: a 404 after an attempt that already saw one, and a fresh listing without the medium. A single 404 is
  weak evidence (GoPro answers one now and then): the medium stays retryable, noted `not_found`;
- a permanent failure (one of the project's own errors typed not transient: an unsafe URL, a file too big for S3,
  an answer that stays unreadable) is recorded FAILED and sent to the DLQ with its reason on its first receive,
  and acknowledged: retrying cannot fix it, so it spends no more receives (`fails_fast`);
- a transient failure releases the medium (PENDING) and reports the record as failed so SQS redelivers it; on the
  message's last receive the medium is recorded FAILED with the error before SQS moves the message to the DLQ;
- a worker that dies on the message's last receive (killed, out of memory, timed out) cannot record anything, so
  the claim of a last receive already writes FAILED (under the lease, with a reason saying so): whatever kills
  the worker, the record agrees with the DLQ message SQS will move; an outcome written later replaces it;
- a claim DynamoDB will not take (throttling beyond every retry) is retried by SQS a minute later; on the last
  receive the medium is recorded FAILED without a lease, so its DLQ message and its record agree;
- a transfer that reaches the Lambda deadline while still making progress saves its multipart checkpoint and is
  re-enqueued as a fresh message, so slow-but-progressing transfers never spend their three receives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
from pipeline.providers.errors import DeletionUnconfirmed, InvalidMediaId, MediaNotFound
from pipeline.providers.registry import UnknownProvider
from pipeline.queueing import send_to_dead_letter
from pipeline.services.download_failures import (
    Delivery,
    RecordWrites,
    deletion_confirmed,
    died_on_last_receive,
    fails_fast,
    retry_soon,
)
from pipeline.services.download_outcome import Disposition, RecordOutcome, count_poison, duplicate
from pipeline.services.medium_files import FileTransfer, MediumFiles, summarise
from pipeline.services.provider_failures import count_provider_failure
from pipeline.services.sidecar import SidecarWriter
from pipeline.sqs_delivery import SqsDelivery
from pipeline.state import (
    NOTE_NOT_FOUND,
    NOTE_SOURCE_DELETED,
    ClaimOutcome,
    MediaRecord,
    StateStore,
    TransitionRefusal,
)
from pipeline.transfer.errors import DeadlineReached
from pipeline.transfer.model import TransferResult

log = logging.getLogger(__name__)

CONTINUATION_ATTRIBUTE = "continuations"
MAX_CONTINUATIONS = 24  # 24 x 15 min: a single file that needs six hours is not "progressing", it is stuck
LEASE_MARGIN_SECONDS = 60
# Time kept back from the Lambda deadline: a part that stalls may hold the transfer for a read timeout before
# it can stop, then the checkpoint and the continuation message must still be written.
DEADLINE_BOOKKEEPING_SECONDS = 15.0


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
        self._records = RecordWrites(state, sleep)
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
        count_poison(self._records.add_to_run, body)
        return RecordOutcome(delivery.message_id, Disposition.POISON, error=reason)

    def _archive(self, message: DownloadMessage, provider: CloudProvider, delivery: Delivery) -> RecordOutcome:
        owner, message_id = delivery.owner, delivery.message_id
        try:
            claim = self._records.write(
                self._state.media.claim,
                message.provider,
                message.media_id,
                owner=owner,
                run_id=message.run_id,
                lease_seconds=self._lease_seconds,
                filename=message.filename,
                captured_at=message.captured_at,
                size=message.size,
                final_error=died_on_last_receive(delivery) if delivery.last_try else None,
            )
        except (ClientError, BotoCoreError) as exc:
            return self._claim_failed(message, delivery, exc)
        if not claim.claimed:  # a duplicate: the medium is COMPLETED, or another worker holds it
            done = claim.outcome is ClaimOutcome.ALREADY_COMPLETED
            log.info("%s: dropping a duplicate (held until %s)", claim.outcome.value, claim.lease_expires_at)
            return duplicate(self._records.add_to_run, message, message_id, claim.record, done=done)
        checkpoint = claim.record.checkpoint if claim.record else None
        started = self._clock()
        try:
            results = self._files.archive(message, provider, owner, checkpoint, delivery.deadline)
            if self._sidecars is not None:  # after the objects, before COMPLETED: it lists only what is there
                self._sidecars.write(message, provider, results)
        except MediaNotFound:
            return self._not_found(message, provider, delivery, claim.record)
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
        written = self._records.write(
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
            # Another worker took the lease over (ours had expired); it records the outcome and counts it (in this
            # run only if it is this run's). The object in S3 is complete and verified, so acknowledging is safe.
            log.warning("lost the lease of %s before recording it (%s)", message.media_id, written.refusal)
            done = written.refusal is TransitionRefusal.ALREADY_COMPLETED
            duplicate(self._records.add_to_run, message, message_id, written.current, done=done)
            return RecordOutcome(message_id, Disposition.ALREADY_DONE, message.media_id)
        transferred = [r for r in results if not r.skipped_existing]
        moved = sum(r.size for r in transferred)
        seconds = sum(r.duration_s for r in transferred)
        self._records.add_to_run(
            message.run_id, synced=1, bytes_transferred=moved, transfer_seconds=round(seconds, 3)
        )
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

    def _not_found(
        self, message: DownloadMessage, provider: CloudProvider, delivery: Delivery, record: MediaRecord | None
    ) -> RecordOutcome:
        """A 404 from the source: a deletion only when confirmed, else an ordinary retryable failure."""
        confirmed, why = deletion_confirmed(provider, message.media_id, record)
        if confirmed:
            return self._source_deleted(message, delivery)
        log.warning("%s answered 404 (%s): not proof of deletion; retrying later", message.media_id, why)
        error = DeletionUnconfirmed(f"{message.media_id} answered 404 ({why}); its deletion is not confirmed")
        return self._failed(message, delivery, error, note=NOTE_NOT_FOUND)

    def _source_deleted(self, message: DownloadMessage, delivery: Delivery) -> RecordOutcome:
        owner, message_id = delivery.owner, delivery.message_id
        log.warning("%s was deleted at the source; recording it as such", message.media_id)
        self._records.write(
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
        self._records.add_to_run(message.run_id, source_deleted=1)
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
        self._records.write(self._state.media.release, message.provider, message.media_id, owner=owner)
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
            retry_soon(self._sqs, self._settings.queue_url, delivery)
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
            self._records.add_to_run(message.run_id, failed=1)
            self._metrics.count(Metric.VIDEOS_FAILED)
            return RecordOutcome(message_id, Disposition.FAILED, media_id, error)
        if written.refusal is TransitionRefusal.ALREADY_COMPLETED:
            return duplicate(self._records.add_to_run, message, message_id, written.current, done=True)
        log.info("%s is held by another worker (%s); leaving it to that one", media_id, written.refusal)
        return duplicate(self._records.add_to_run, message, message_id, written.current, done=False)

    def _failed(
        self,
        message: DownloadMessage,
        delivery: Delivery,
        exc: Exception,
        *,
        final: bool = False,
        note: str | None = None,
    ) -> RecordOutcome:
        """FAILED on the last receive (or when `final`), else handed back to SQS for another try; `note` goes
        into the record either way (`not_found`: the evidence a later attempt needs to confirm a deletion)."""
        owner, message_id, receive_count = delivery.owner, delivery.message_id, delivery.receive_count
        error = redact(f"{type(exc).__name__}: {exc}")
        count_provider_failure(self._metrics, exc)
        if fails_fast(exc) and not delivery.last_try:
            dead = self._dead_letter(message, delivery, error)
            if dead is not None:
                return dead
        if final or delivery.last_try:
            log.error("giving up on %s after %d receives: %s", message.media_id, receive_count, error)
            self._records.write(
                self._state.media.fail, message.provider, message.media_id, owner=owner, error=error, note=note
            )
            self._records.add_to_run(message.run_id, failed=1)
            self._metrics.count(Metric.VIDEOS_FAILED)
            return RecordOutcome(message_id, Disposition.FAILED, message.media_id, error)
        log.warning("attempt %d of %s failed, SQS will retry: %s", receive_count, message.media_id, error)
        self._records.write(
            self._state.media.release, message.provider, message.media_id, owner=owner, error=error, note=note
        )
        self._records.add_to_run(message.run_id, retried=1)
        retry_soon(self._sqs, self._settings.queue_url, delivery)
        return RecordOutcome(message_id, Disposition.RETRY, message.media_id, error)

    def _dead_letter(self, message: DownloadMessage, delivery: Delivery, error: str) -> RecordOutcome | None:
        """A permanent failure on a receive before the last: FAILED, then the DLQ with the reason, then acked.

        FAILED first: a worker killed between the two writes leaves a FAILED record whose message SQS redelivers
        (and the redelivery fails the same way), never a DLQ message beside a record that says nothing. None when
        the DLQ refused the message: the ordinary path takes over (SQS's receives, then its own redrive).
        """
        media_id = message.media_id
        log.error("%s failed permanently; recording it FAILED and dead-lettering it now: %s", media_id, error)
        owner = delivery.owner
        written = self._records.write(self._state.media.fail, message.provider, media_id, owner=owner, error=error)
        if not written:
            log.warning("could not record %s FAILED (%s); leaving it to SQS's retries", media_id, written.refusal)
            return None
        body = delivery.sqs.body
        try:
            send_to_dead_letter(
                self._sqs,
                self._settings.dlq_url,
                body if isinstance(body, str) else message.to_json(),
                reason=error,
                original_message_id=delivery.message_id,
                receive_count=delivery.receive_count,
                original_attributes=dict(delivery.sqs.message_attributes),
            )
        except Exception as exc:  # the FAILED record stays; SQS redelivers the message and its redrive ends it
            log.error("could not dead-letter %s, SQS will retry it: %s", media_id, redact(str(exc)))
            retry_soon(self._sqs, self._settings.queue_url, delivery)
            return RecordOutcome(delivery.message_id, Disposition.RETRY, media_id, error)
        self._records.add_to_run(message.run_id, failed=1)
        self._metrics.count(Metric.VIDEOS_FAILED)
        return RecordOutcome(delivery.message_id, Disposition.DEAD_LETTERED, media_id, error)


def deadline_safety_seconds(settings: Settings) -> float:
    """How long before the Lambda deadline a transfer must stop: a stalled read, then the bookkeeping."""
    return settings.http_read_timeout + DEADLINE_BOOKKEEPING_SECONDS
