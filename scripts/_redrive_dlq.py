"""Move messages from the dead-letter queue back to the download queue, and put their media back to PENDING.

Two ways to move:
- **native** (no --media-id, --max or --dry-run): SQS's own StartMessageMoveTask, followed with
  ListMessageMoveTasks until it ends. SQS moves the messages server-side, attributes and all.
- **selective** (any of those options): the script receives the DLQ's messages, keeps the ones asked for and moves
  each one itself: send to the download queue, check SQS confirmed it (message id and body MD5), reset the medium
  to PENDING, and only then delete it from the DLQ. A crash half-way leaves at worst the same message in both
  queues (a duplicate, which the downloader's claim and S3 idempotency absorb), never a lost one. Messages it
  received but does not move are made visible again at once.

Poison messages (a `poison_reason` attribute, or a body that does not parse) would only come straight back to the
DLQ, so they stay there unless --include-poison; the script says how many it left. Because the native task cannot
leave them behind, the script first looks at every DLQ message (a census): if it finds poison, it moves the others
selectively instead, and it needs the census anyway to know which media to reset and what it moved.

A local stack (moto) does not implement StartMessageMoveTask: the script says so and moves selectively.

Examples:
  python scripts/redrive_dlq.py --env prod                       # everything but poison
  python scripts/redrive_dlq.py --env prod --media-id 62NzWRrpPXm7o --dry-run
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from pipeline.messages import DownloadMessage, PoisonMessage, parse
from pipeline.queueing import (
    BODY_TRUNCATED_ATTRIBUTE,
    ORIGINAL_MESSAGE_ID_ATTRIBUTE,
    POISON_REASON_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
)
from pipeline.sqs_delivery import attribute_value
from pipeline.state import StateStore, TransitionResult
from scripts._common import (
    EXIT_FAILED,
    EXIT_OK,
    Context,
    ScriptError,
    aws_call,
    error_code,
    load_context,
    print_json,
    queue_arn,
    queue_url,
    setup_logging,
)

NAME = "redrive_dlq"
RECEIVE_BATCH = 10  # SQS's maximum per ReceiveMessage / ChangeMessageVisibilityBatch call
DEFAULT_HOLD_SECONDS = 120
DEFAULT_WAIT_SECONDS = 1
DEFAULT_POLL_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 900.0
# Attributes the DLQ adds to a poison message (pipeline/queueing.py); they describe its stay in the DLQ and are
# not forwarded to the download queue.
DLQ_ONLY_ATTRIBUTES = frozenset(
    {POISON_REASON_ATTRIBUTE, ORIGINAL_MESSAGE_ID_ATTRIBUTE, RECEIVE_COUNT_ATTRIBUTE, BODY_TRUNCATED_ATTRIBUTE}
)
# What an emulator answers for an action it does not implement (moto: a bare HTTP 500); AWS itself would answer
# with one of the documented error codes, which are reported as errors, never taken as "unsupported".
_UNSUPPORTED_CODES = frozenset({"InvalidAction", "UnknownOperationException", "NotImplemented", "501", "500"})
MOVE_RUNNING = "RUNNING"
MOVE_COMPLETED = "COMPLETED"


class Mode(StrEnum):
    NATIVE = "native"
    SELECTIVE = "selective"


class Verdict(StrEnum):
    MOVE = "move"
    POISON = "poison"
    NOT_SELECTED = "not_selected"
    OVER_MAX = "over_max"


@dataclass
class DlqMessage:
    """One received DLQ message: its body as it arrived, its attributes, and what it parses into."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, Any]
    message: DownloadMessage | None
    poison_reason: str | None

    @classmethod
    def from_sqs(cls, raw: dict[str, Any]) -> DlqMessage:
        body = str(raw.get("Body", ""))
        attributes = dict(raw.get("MessageAttributes") or {})
        reason = attribute_value(attributes, POISON_REASON_ATTRIBUTE)
        message: DownloadMessage | None = None
        try:
            message = parse(body)
        except PoisonMessage as exc:
            reason = reason or f"unparseable: {exc.reason}"
        return cls(str(raw["MessageId"]), str(raw["ReceiptHandle"]), body, attributes, message, reason)

    @property
    def poison(self) -> bool:
        return self.poison_reason is not None or self.message is None

    def forwarded_attributes(self) -> dict[str, dict[str, str]]:
        """The message attributes to send on, in SendMessage's shape, without the DLQ's own."""
        forwarded: dict[str, dict[str, str]] = {}
        for name, value in self.attributes.items():
            if name in DLQ_ONLY_ATTRIBUTES or not isinstance(value, dict):
                continue
            entry = {"DataType": str(value.get("DataType", "String"))}
            if "StringValue" in value:
                entry["StringValue"] = str(value["StringValue"])
            elif "BinaryValue" in value:
                entry["BinaryValue"] = value["BinaryValue"]
            else:
                continue
            forwarded[name] = entry
        return forwarded

    def label(self) -> str:
        if self.message is not None:
            return f"{self.message.provider}/{self.message.media_id}"
        return f"message {self.message_id}"


@dataclass
class MovedEntry:
    provider: str | None
    media_id: str | None
    dlq_message_id: str
    queue_message_id: str | None = None
    state: str = ""  # what the medium's record became: "PENDING", "already_completed", "not_found", ...
    duplicate: bool = False  # sent, but the DLQ copy could not be deleted


@dataclass
class RedriveReport:
    mode: Mode
    dry_run: bool
    moved: list[MovedEntry] = field(default_factory=list)
    poison_left: int = 0
    not_selected_left: int = 0
    over_max_left: int = 0
    native_task: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> list[MovedEntry]:
        return [m for m in self.moved if m.duplicate]

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["mode"] = self.mode.value
        return document


@dataclass(frozen=True)
class Options:
    media_ids: frozenset[str]
    max_messages: int | None
    dry_run: bool
    include_poison: bool
    hold_seconds: int
    wait_seconds: int
    poll_seconds: float
    timeout_seconds: float

    @property
    def filtered(self) -> bool:
        return bool(self.media_ids) or self.max_messages is not None or self.dry_run


@dataclass
class Queues:
    sqs: Any
    dlq_url: str
    queue_url: str
    dlq_arn: str
    queue_arn: str


# --- receiving and classifying -------------------------------------------------------------------------------


def receive_all(sqs: Any, dlq_url: str, *, hold_seconds: int, wait_seconds: int) -> list[DlqMessage]:
    """Every message in the DLQ, each hidden for `hold_seconds` (so a later receive returns the next ones).

    Long polling (`wait_seconds` >= 1) asks every SQS server, so an empty answer means the queue has nothing
    visible left. A message received twice (its hold ran out) keeps its newest receipt handle.
    """
    held: dict[str, DlqMessage] = {}
    while True:
        answer = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=hold_seconds,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        batch = answer.get("Messages", [])
        if not batch:
            return list(held.values())
        for raw in batch:
            message = DlqMessage.from_sqs(raw)
            held[message.message_id] = message


def classify(messages: Iterable[DlqMessage], options: Options) -> list[tuple[DlqMessage, Verdict]]:
    verdicts: list[tuple[DlqMessage, Verdict]] = []
    chosen = 0
    for message in messages:
        if message.poison and not options.include_poison:
            verdict = Verdict.POISON
        elif options.media_ids and (message.message is None or message.message.media_id not in options.media_ids):
            verdict = Verdict.NOT_SELECTED
        elif options.max_messages is not None and chosen >= options.max_messages:
            verdict = Verdict.OVER_MAX
        else:
            verdict = Verdict.MOVE
            chosen += 1
        verdicts.append((message, verdict))
    return verdicts


def release(sqs: Any, dlq_url: str, messages: Sequence[DlqMessage]) -> None:
    """Make held messages visible again now. Best effort: whatever fails reappears when its hold runs out."""
    for start in range(0, len(messages), RECEIVE_BATCH):
        chunk = messages[start : start + RECEIVE_BATCH]
        with contextlib.suppress(ClientError):
            sqs.change_message_visibility_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )


# --- the selective move ---------------------------------------------------------------------------------------


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def send_confirmed(sqs: Any, url: str, message: DlqMessage) -> str:
    """Send `message` to the download queue; returns the new message id once SQS confirmed the exact body."""
    attributes = message.forwarded_attributes()
    kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": message.body}
    if attributes:
        kwargs["MessageAttributes"] = attributes
    answer = sqs.send_message(**kwargs)
    new_id = answer.get("MessageId")
    if not new_id or answer.get("MD5OfMessageBody") != _md5(message.body):
        raise ScriptError(f"SQS did not confirm the copy of {message.label()}; it was left in the DLQ")
    return str(new_id)


def describe_reset(result: TransitionResult) -> str:
    if result.applied:
        return "PENDING"
    return str(result.refusal.value if result.refusal else "refused")


def reset_media(state: StateStore, message: DlqMessage) -> str:
    """Put the medium back to PENDING; a refusal (COMPLETED, leased, no record) or an error is reported, never
    raised: the message has moved either way, and a claim starts from FAILED as well."""
    if message.message is None:
        return "no_record"
    try:
        result = state.media.reset_to_pending(message.message.provider, message.message.media_id)
    except ClientError as exc:
        return f"reset_failed:{error_code(exc)}"
    return describe_reset(result)


def move_selectively(
    queues: Queues, state: StateStore, held: list[DlqMessage], options: Options, report: RedriveReport
) -> None:
    """Move the chosen held messages (send, confirm, reset, delete) and release every other one."""
    verdicts = classify(held, options)
    report.poison_left = sum(1 for _, v in verdicts if v is Verdict.POISON)
    report.not_selected_left = sum(1 for _, v in verdicts if v is Verdict.NOT_SELECTED)
    report.over_max_left = sum(1 for _, v in verdicts if v is Verdict.OVER_MAX)
    to_move = [m for m, v in verdicts if v is Verdict.MOVE]
    untouched = [m for m, v in verdicts if v is not Verdict.MOVE]
    if options.dry_run:
        report.moved.extend(_entry(m) for m in to_move)
        release(queues.sqs, queues.dlq_url, held)
        return
    release(queues.sqs, queues.dlq_url, untouched)
    for index, message in enumerate(to_move):
        try:
            new_id = send_confirmed(queues.sqs, queues.queue_url, message)
        except (ClientError, ScriptError) as exc:
            release(queues.sqs, queues.dlq_url, to_move[index:])
            detail = f"{error_code(exc)}" if isinstance(exc, ClientError) else str(exc)
            raise ScriptError(
                f"sending {message.label()} to {queues.queue_url.rsplit('/', 1)[-1]} failed ({detail}) after "
                f"moving {len(report.moved)}; it and the rest stay in the DLQ"
            ) from None
        entry = _entry(message, new_id)
        entry.state = reset_media(state, message)
        try:
            queues.sqs.delete_message(QueueUrl=queues.dlq_url, ReceiptHandle=message.receipt_handle)
        except ClientError:
            entry.duplicate = True  # at worst a duplicate: both copies are processable, the downloader dedupes
        report.moved.append(entry)


def _entry(message: DlqMessage, new_id: str | None = None) -> MovedEntry:
    parsed = message.message
    return MovedEntry(
        provider=parsed.provider if parsed else None,
        media_id=parsed.media_id if parsed else None,
        dlq_message_id=message.message_id,
        queue_message_id=new_id,
    )


# --- the native move ------------------------------------------------------------------------------------------


class NativeUnsupported(Exception):
    """The endpoint (a local emulator) does not implement StartMessageMoveTask."""


def native_unsupported(exc: ClientError, ctx: Context) -> bool:
    """True only against a custom endpoint (a local stack) answering like an emulator without the action."""
    if not ctx.settings.aws_endpoint_url:
        return False
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return error_code(exc) in _UNSUPPORTED_CODES or status in (500, 501)


def move_natively(
    ctx: Context,
    queues: Queues,
    options: Options,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """StartMessageMoveTask, then ListMessageMoveTasks until the task is no longer RUNNING; the final entry.

    The start call gets one attempt (a retried start could race its own first attempt; SQS refuses a second
    task on the same queue anyway), the polls use the usual retries.
    """
    starter = ctx.client("sqs", max_attempts=1)
    try:
        started = starter.start_message_move_task(SourceArn=queues.dlq_arn, DestinationArn=queues.queue_arn)
    except ClientError as exc:
        if native_unsupported(exc, ctx):
            raise NativeUnsupported(str(exc)) from None
        raise
    handle = started.get("TaskHandle")
    deadline = clock() + options.timeout_seconds
    while True:
        sleep(options.poll_seconds)
        results = queues.sqs.list_message_move_tasks(SourceArn=queues.dlq_arn, MaxResults=10).get("Results", [])
        # A running task carries its handle; a finished one does not, and the newest task is listed first.
        task = next(
            (r for r in results if handle and r.get("TaskHandle") == handle), results[0] if results else {}
        )
        status = task.get("Status", "")
        if status == MOVE_COMPLETED:
            return dict(task)
        if status and status != MOVE_RUNNING:
            reason = task.get("FailureReason", "no reason given")
            raise ScriptError(f"the SQS move task ended {status}: {reason}")
        if clock() >= deadline:
            raise ScriptError(
                f"the SQS move task is still running after {options.timeout_seconds:.0f}s; it goes on inside "
                "SQS (check it in the SQS console, dead-letter queue redrive); media were not reset to PENDING"
            )


# --- the whole redrive ----------------------------------------------------------------------------------------


def resolve_queues(ctx: Context) -> Queues:
    dlq = queue_url(ctx, ctx.names.dead_letter_queue)
    main_queue = queue_url(ctx, ctx.names.queue)
    return Queues(
        sqs=ctx.client("sqs"),
        dlq_url=dlq,
        queue_url=main_queue,
        dlq_arn=queue_arn(ctx, dlq, ctx.names.dead_letter_queue),
        queue_arn=queue_arn(ctx, main_queue, ctx.names.queue),
    )


def check_table(ctx: Context) -> None:
    """Fail before moving anything if the state table is missing (media could not be reset afterwards)."""
    with aws_call(f"table {ctx.settings.table_name}", ctx):
        ctx.client("dynamodb").describe_table(TableName=ctx.settings.table_name)


def redrive(
    ctx: Context,
    options: Options,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RedriveReport:
    queues = resolve_queues(ctx)
    check_table(ctx)
    state = StateStore.from_settings(ctx.settings)
    with aws_call(f"queue {ctx.names.dead_letter_queue}", ctx):
        held = receive_all(
            queues.sqs, queues.dlq_url, hold_seconds=options.hold_seconds, wait_seconds=options.wait_seconds
        )
    if options.filtered:
        report = RedriveReport(Mode.SELECTIVE, options.dry_run)
        with aws_call(f"queue {ctx.names.queue}", ctx):
            move_selectively(queues, state, held, options, report)
        return report
    census = classify(held, options)
    if any(v is Verdict.POISON for _, v in census):
        report = RedriveReport(Mode.SELECTIVE, dry_run=False)
        report.notes.append(
            "the DLQ holds poison messages, which a native move would take along: moved selectively"
        )
        with aws_call(f"queue {ctx.names.queue}", ctx):
            move_selectively(queues, state, held, options, report)
        return report
    release(queues.sqs, queues.dlq_url, held)
    if not held:
        return RedriveReport(Mode.NATIVE, dry_run=False, notes=["the dead-letter queue is empty"])
    try:
        with aws_call(f"queue {ctx.names.dead_letter_queue}", ctx):
            task = move_natively(ctx, queues, options, sleep=sleep, clock=clock)
    except NativeUnsupported:
        report = RedriveReport(Mode.SELECTIVE, dry_run=False)
        report.notes.append(
            f"the endpoint {ctx.settings.aws_endpoint_url} does not implement StartMessageMoveTask (a local "
            "stack): moved selectively instead"
        )
        with aws_call(f"queue {ctx.names.queue}", ctx):
            again = receive_all(
                queues.sqs, queues.dlq_url, hold_seconds=options.hold_seconds, wait_seconds=options.wait_seconds
            )
            move_selectively(queues, state, again, options, report)
        return report
    report = RedriveReport(Mode.NATIVE, dry_run=False, native_task=task)
    for message in held:
        entry = _entry(message)
        entry.state = reset_media(state, message)
        report.moved.append(entry)
    moved = task.get("ApproximateNumberOfMessagesMoved")
    if isinstance(moved, int) and moved != len(held):
        report.notes.append(f"SQS reports {moved} messages moved; {len(held)} were in the DLQ when it started")
    return report


# --- command line ---------------------------------------------------------------------------------------------


def options_from(args: Any) -> Options:
    return Options(
        media_ids=frozenset(args.media_id),
        max_messages=args.max_messages,
        dry_run=args.dry_run,
        include_poison=args.include_poison,
        hold_seconds=args.hold_seconds,
        wait_seconds=args.wait_seconds,
        poll_seconds=args.poll_seconds,
        timeout_seconds=args.timeout_seconds,
    )


def print_report(report: RedriveReport, ctx: Context) -> None:
    for note in report.notes:
        print(f"note: {note}")
    verb = "would move" if report.dry_run else "moved"
    for entry in report.moved:
        what = f"{entry.provider}/{entry.media_id}" if entry.media_id else f"message {entry.dlq_message_id}"
        state = f", record {entry.state}" if entry.state else ""
        dup = " (DLQ copy not deleted: a duplicate the downloader will absorb)" if entry.duplicate else ""
        print(f"{verb} {what}{state}{dup}")
    print(
        f"{verb} {len(report.moved)} message(s) from {ctx.names.dead_letter_queue} to {ctx.names.queue}"
        f" ({report.mode.value} move)"
    )
    if report.poison_left:
        print(
            f"left {report.poison_left} poison message(s) in the DLQ (they cannot be processed; "
            "--include-poison moves them anyway)"
        )
    if report.not_selected_left or report.over_max_left:
        print(f"left {report.not_selected_left + report.over_max_left} other message(s) in the DLQ (not selected)")


def execute(args: Any) -> int:
    setup_logging(args)
    ctx = load_context(args)
    report = redrive(ctx, options_from(args))
    if args.json:
        print_json(report.as_json())
    else:
        print_report(report, ctx)
    return EXIT_FAILED if report.duplicates else EXIT_OK
