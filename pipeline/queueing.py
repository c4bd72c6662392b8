"""Sending to the download queue and to its dead-letter queue.

Why not a plain loop over SendMessage: the lister enqueues thousands of messages a night, and SendMessageBatch (10
entries, 256 KiB a call) cuts the calls tenfold. But a batch call that *succeeds* can still fail some entries
(`Failed` in the response); botocore does not retry those, because the call itself succeeded. So:
- entries SQS failed through no fault of ours (`SenderFault: false`, e.g. an internal error) are retried with
  jittered backoff, a bounded number of times;
- entries failed as our fault (`SenderFault: true`: a bad attribute, a body too long) are not retried;
- everything not sent is *reported* in `SendReport.failed`, never silently dropped, so the lister can count it and
  record the run as partial.
A whole call failing (after botocore's own retries of throttling and 5xx) stops the send: the rest is reported
as failed with that error, because an access or configuration error would only repeat for every batch.

`send_to_dead_letter` is for poison messages: the downloader moves an unparseable body to the DLQ at once, with the
reason as a message attribute, instead of letting it be received and fail three times.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import error_code, error_message
from pipeline.errors import SyncError
from pipeline.messages import CORRELATION_ID_ATTRIBUTE, DownloadMessage
from pipeline.retry import RetryPolicy
from pipeline.sqs_delivery import correlation_id_from_attributes

log = logging.getLogger(__name__)

MAX_BATCH_ENTRIES = 10
# SQS's limit for one message and for a whole batch: body plus message attributes (names, types and values).
MAX_BATCH_BYTES = 256 * 1024
MAX_REASON_CHARS = 1024

POISON_REASON_ATTRIBUTE = "poison_reason"
ORIGINAL_MESSAGE_ID_ATTRIBUTE = "original_message_id"
RECEIVE_COUNT_ATTRIBUTE = "receive_count"
BODY_TRUNCATED_ATTRIBUTE = "body_truncated"

DEFAULT_SEND_RETRY = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=5.0)

# Characters SQS accepts in bodies and attribute values: #x9 #xA #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000+.
_SQS_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class SentMessage:
    media_id: str
    message_id: str


@dataclass(frozen=True)
class FailedSend:
    """A message that was not enqueued: the SQS error code and message, and whether it was our fault."""

    media_id: str
    code: str
    message: str
    sender_fault: bool


@dataclass
class SendReport:
    sent: list[SentMessage] = field(default_factory=list)
    failed: list[FailedSend] = field(default_factory=list)
    calls: int = 0
    retried_entries: int = 0
    # Set when a whole SendMessageBatch call failed and the send stopped (the error code).
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def sent_count(self) -> int:
        return len(self.sent)

    @property
    def failed_count(self) -> int:
        return len(self.failed)


def attributes_size(attributes: dict[str, dict[str, str]]) -> int:
    """Bytes SQS counts for message attributes: each name, data type and value."""
    total = 0
    for name, attribute in attributes.items():
        total += len(name.encode()) + len(attribute["DataType"].encode())
        total += len(attribute.get("StringValue", "").encode())
    return total


@dataclass(frozen=True)
class _Entry:
    message: DownloadMessage
    body: str
    attributes: dict[str, dict[str, str]]
    size: int


def _pack(entries: list[_Entry]) -> list[list[_Entry]]:
    """Group entries into batches of at most 10 entries and 256 KiB, in order."""
    batches: list[list[_Entry]] = []
    current: list[_Entry] = []
    current_bytes = 0
    for entry in entries:
        if current and (len(current) == MAX_BATCH_ENTRIES or current_bytes + entry.size > MAX_BATCH_BYTES):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(entry)
        current_bytes += entry.size
    if current:
        batches.append(current)
    return batches


def send_download_messages(
    sqs: Any,
    queue_url: str,
    messages: Iterable[DownloadMessage],
    *,
    policy: RetryPolicy = DEFAULT_SEND_RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Enqueue `messages` with SendMessageBatch; see the module docstring for what is retried and reported."""
    report = SendReport()
    entries: list[_Entry] = []
    for message in messages:
        body = message.to_json()
        attributes = message.message_attributes()
        size = len(body.encode()) + attributes_size(attributes)
        if size > MAX_BATCH_BYTES:
            report.failed.append(
                FailedSend(message.media_id, "MessageTooLong", f"{size} bytes exceeds {MAX_BATCH_BYTES}", True)
            )
            continue
        entries.append(_Entry(message, body, attributes, size))

    batches = _pack(entries)
    for index, batch in enumerate(batches):
        try:
            _send_batch(sqs, queue_url, batch, report, policy, sleep)
        except _BatchAborted as aborted:
            code, text = _error_details(aborted.cause)
            unsent = aborted.pending + [entry for later in batches[index + 1 :] for entry in later]
            log.error("SendMessageBatch failed (%s); %d messages not enqueued", code, len(unsent))
            sender_fault = _sender_fault(aborted.cause)
            report.failed.extend(FailedSend(entry.message.media_id, code, text, sender_fault) for entry in unsent)
            report.aborted = code
            break
    if report.failed:
        log.warning("enqueued %d messages, %d not enqueued", report.sent_count, report.failed_count)
    else:
        log.info("enqueued %d messages in %d calls", report.sent_count, report.calls)
    return report


class _BatchAborted(SyncError):
    """A whole SendMessageBatch call failed: the send stops (never escapes `send_download_messages`)."""

    def __init__(self, cause: ClientError | BotoCoreError, pending: list[_Entry]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.pending = pending


def _send_batch(
    sqs: Any,
    queue_url: str,
    batch: list[_Entry],
    report: SendReport,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
) -> None:
    """Send one batch, retrying the entries SQS failed through no fault of ours, at most `policy.max_attempts`
    calls in all. Results go into `report`; a failed call raises _BatchAborted with the entries still unsent."""
    delays = policy.delays()
    pending = batch
    attempt = 0
    while pending:
        attempt += 1
        by_id = {str(position): entry for position, entry in enumerate(pending)}
        try:
            report.calls += 1
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": entry_id, "MessageBody": entry.body, "MessageAttributes": entry.attributes}
                    for entry_id, entry in by_id.items()
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            raise _BatchAborted(exc, pending) from exc
        for success in response.get("Successful", []):
            entry = by_id.pop(success["Id"])
            report.sent.append(SentMessage(entry.message.media_id, success["MessageId"]))
        retry: list[tuple[_Entry, dict[str, Any]]] = []
        for failure in response.get("Failed", []):
            entry = by_id.pop(failure["Id"])
            if failure.get("SenderFault", False):
                log.error(
                    "SQS refused message for %s: %s %s",
                    entry.message.media_id,
                    failure.get("Code"),
                    failure.get("Message", ""),
                )
                report.failed.append(_failed(entry, failure, sender_fault=True))
            else:
                retry.append((entry, failure))
        # An entry in neither list should not happen; treat it like a transient failure rather than lose it.
        retry.extend((entry, {"Code": "Unacknowledged"}) for entry in by_id.values())
        if not retry:
            return
        if attempt >= policy.max_attempts:
            log.error("%d messages still failing after %d attempts; giving up on them", len(retry), attempt)
            report.failed.extend(_failed(entry, failure, sender_fault=False) for entry, failure in retry)
            return
        wait = next(delays)
        report.retried_entries += len(retry)
        log.info("SendMessageBatch: %d entries failed on SQS's side; retry %d in %.2fs", len(retry), attempt, wait)
        sleep(wait)
        pending = [entry for entry, _failure in retry]


def _failed(entry: _Entry, failure: dict[str, Any], *, sender_fault: bool) -> FailedSend:
    return FailedSend(
        media_id=entry.message.media_id,
        code=str(failure.get("Code", "Unknown")),
        message=str(failure.get("Message", ""))[:MAX_REASON_CHARS],
        sender_fault=sender_fault,
    )


def _error_details(exc: ClientError | BotoCoreError) -> tuple[str, str]:
    if isinstance(exc, ClientError):
        return error_code(exc) or "ClientError", error_message(exc)[:MAX_REASON_CHARS]
    return type(exc).__name__, str(exc)[:MAX_REASON_CHARS]


def _sender_fault(exc: ClientError | BotoCoreError) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        return 400 <= int(status) < 500
    return False


def sqs_safe(text: str) -> str:
    """`text` with the characters SQS refuses in bodies and attribute values replaced by U+FFFD."""
    return _SQS_INVALID.sub("\ufffd", text)


def send_to_dead_letter(
    sqs: Any,
    dlq_url: str,
    body: str,
    reason: str,
    original_message_id: str,
    receive_count: int,
    *,
    original_attributes: dict[str, Any] | None = None,
) -> str:
    """Put a poison message on the DLQ with why, and return the new message id.

    The body is kept as received (so an operator sees exactly what arrived); the reason, the original message id
    and its receive count travel as message attributes, and the correlation id too when the original carried a
    plausible one (in SQS API or Lambda event shape). Errors propagate: the caller then reports the record as
    failed, and SQS's own redrive puts it on the DLQ after its last receive anyway.
    """
    attributes: dict[str, dict[str, str]] = {
        POISON_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": sqs_safe(reason)[:MAX_REASON_CHARS] or "-"},
        ORIGINAL_MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": sqs_safe(original_message_id) or "-"},
        RECEIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": str(int(receive_count))},
    }
    correlation_id = correlation_id_from_attributes(original_attributes)
    if correlation_id:
        attributes[CORRELATION_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": correlation_id}
    safe_body = sqs_safe(body) or "(empty body)"
    room = MAX_BATCH_BYTES - attributes_size(attributes) - 64
    encoded = safe_body.encode()
    if len(encoded) > room:
        # Only possible for a body at SQS's own limit: keep what fits and say so.
        safe_body = encoded[:room].decode(errors="ignore")
        attributes[BODY_TRUNCATED_ATTRIBUTE] = {"DataType": "String", "StringValue": "true"}
    response = sqs.send_message(QueueUrl=dlq_url, MessageBody=safe_body, MessageAttributes=attributes)
    message_id = str(response["MessageId"])
    log.warning(
        "poison message %s moved to the DLQ as %s (receive %d): %s",
        original_message_id,
        message_id,
        receive_count,
        reason[:200],
    )
    return message_id
