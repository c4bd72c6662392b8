"""The media state store: every read and conditional write the pipeline makes against the DynamoDB table.

Design choices, and why:
- **The low-level client, not `boto3.resource`.** Resources are not thread-safe (the downloader renews its lease
  from a second thread while parts upload), they are deprecated for new features, and they hide the error
  response where DynamoDB returns the item that failed a condition (`ReturnValuesOnConditionCheckFailure`), which
  is how a refused claim says *why* without a second read. botocore's Stubber and event hooks also work directly
  on a client, which the failure-path tests use.
- **Conditional writes are answers, not errors.** A ConditionalCheckFailed becomes a `ClaimResult` or a
  `TransitionResult`; it is never retried. Throughput errors are retried by botocore's standard retry mode (see
  `pipeline.aws_clients`); if they outlast it, the ClientError propagates and SQS redelivers the message.
- **Leases, not locks.** A claim sets `lease_owner` and `lease_expires_at` (epoch seconds, a Number so conditions
  compare it numerically). A worker that crashed stops renewing; once the lease expires, the next claim takes the
  medium over. Every later write by a worker (`renew_lease`, `save_checkpoint`, `complete`, `fail`, `release`) is
  conditional on it still holding the lease, so a worker that lost it can never overwrite its successor.
- **COMPLETED is terminal.** No method here moves a COMPLETED record anywhere else.
- **Every medium carries `sync_timestamp`** (ISO-8601 UTC, the time of its last status change) so the sparse
  status index (`status` + `sync_timestamp`) holds every medium; run records and cursors have neither attribute and
  stay out of the index.
- **Times are passed in** (`now=`) so tests can expire a lease without sleeping; they default to the wall clock.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from pipeline import resources
from pipeline.config import Settings
from pipeline.retry import RetryPolicy
from pipeline.state.models import (
    RUN_COUNTERS,
    Attr,
    Checksum,
    ClaimOutcome,
    ClaimResult,
    MediaRecord,
    MediaStatus,
    RunRecord,
    StateStoreError,
    TransitionRefusal,
    TransitionResult,
    UnprocessedKeysError,
)

log = logging.getLogger(__name__)

BATCH_GET_MAX_KEYS = 100  # DynamoDB's limit per BatchGetItem call
MAX_ERROR_CHARS = 1000  # last_error / lister_error: enough for a message and a status code, not a traceback
TRUNCATION_MARK = "...[truncated]"
# A checkpoint is saved at a Lambda deadline (upload id plus the parts done, ~70 bytes a part). DynamoDB items stop
# at 400 KB, so this leaves room for the rest of the record: about 4,000 parts fit. A transfer with more parts done
# must checkpoint less (the upload id alone: S3's ListParts recovers the parts); the cap makes that a clear
# ValueError here instead of a ValidationException from DynamoDB.
MAX_CHECKPOINT_BYTES = 300 * 1024
MAX_CURSOR_BYTES = 64 * 1024
# The item that names each provider's newest run (`latest-run#gopro`). Not `run#...`: the scan in `latest_runs`
# must never mistake it for a run.
LATEST_RUN_KEY_PREFIX = "latest-run"
# A summary that claimed a run's report but died before marking it sent can be taken over after this long.
DEFAULT_REPORT_CLAIM_STALE_SECONDS = 900

# What the lister needs to decide whether to enqueue a medium (and to report why it skipped one).
LISTER_PROJECTION: tuple[str, ...] = (
    Attr.PK,
    Attr.PROVIDER,
    Attr.MEDIA_ID,
    Attr.STATUS,
    Attr.SYNC_TIMESTAMP,
    Attr.SIZE,
    Attr.ATTEMPTS,
    Attr.NOTE,
    Attr.LEASE_EXPIRES_AT,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"


# --- small helpers ---------------------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC with milliseconds and a Z, so strings sort in time order (the index's sort key)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _epoch(moment: datetime) -> Decimal:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return Decimal(str(round(moment.timestamp(), 3)))


def truncate_error(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Keep an error message to a size that fits a report line and never bloats the item."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def _to_number(value: int | float | Decimal) -> Decimal:
    if isinstance(value, bool):
        raise TypeError("a bool is not a number here")
    if isinstance(value, float):
        return Decimal(str(round(value, 6)))
    return Decimal(value)


def _to_json_text(value: Mapping[str, Any], limit: int, what: str) -> str:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    if len(text.encode()) > limit:
        raise ValueError(f"{what} is {len(text.encode())} bytes, more than {limit}")
    return text


def _from_json_text(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):  # tolerate a map written by hand or by an older version
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        log.warning("ignoring an unreadable stored JSON document")
        return None
    return parsed if isinstance(parsed, dict) else None


class _Expr:
    """Builds an UpdateExpression and a ConditionExpression with placeholders for every name and value.

    Every attribute name goes through a `#name` placeholder: `status` and `size` are DynamoDB reserved words.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._set: list[str] = []
        self._remove: list[str] = []
        self._add: list[str] = []

    def n(self, attr: str) -> str:
        placeholder = f"#{attr}"
        self.names[placeholder] = attr
        return placeholder

    def v(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        if isinstance(value, MediaStatus):
            value = value.value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = _to_number(value)
        self.values[placeholder] = _serializer.serialize(value)
        return placeholder

    def set(self, attr: str, value: Any) -> None:
        self._set.append(f"{self.n(attr)} = {self.v(value)}")

    def set_or_remove(self, attr: str, value: Any) -> None:
        if value is None:
            self.remove(attr)
        else:
            self.set(attr, value)

    def set_expression(self, text: str) -> None:
        self._set.append(text)

    def remove(self, attr: str) -> None:
        self._remove.append(self.n(attr))

    def add(self, attr: str, value: int | float | Decimal) -> None:
        self._add.append(f"{self.n(attr)} {self.v(value)}")

    def update_kwargs(self, condition: str | None = None) -> dict[str, Any]:
        parts = []
        if self._set:
            parts.append("SET " + ", ".join(self._set))
        if self._remove:
            parts.append("REMOVE " + ", ".join(self._remove))
        if self._add:
            parts.append("ADD " + ", ".join(self._add))
        kwargs: dict[str, Any] = {"UpdateExpression": " ".join(parts), "ExpressionAttributeNames": self.names}
        if condition:
            kwargs["ConditionExpression"] = condition
        if self.values:
            kwargs["ExpressionAttributeValues"] = self.values
        return kwargs


def _deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def record_from_item(item: Mapping[str, Any]) -> MediaRecord:
    """A MediaRecord from a raw (typed) DynamoDB item."""
    data = _deserialize(item)
    pk = str(data.get(Attr.PK, ""))
    provider, _, media_id = pk.partition(resources.KEY_SEPARATOR)
    checksum = None
    if data.get(Attr.CHECKSUM_ALGORITHM) and data.get(Attr.CHECKSUM_VALUE):
        checksum = Checksum(str(data[Attr.CHECKSUM_ALGORITHM]), str(data[Attr.CHECKSUM_VALUE]))
    lease = data.get(Attr.LEASE_EXPIRES_AT)
    return MediaRecord(
        provider=str(data.get(Attr.PROVIDER) or provider),
        media_id=str(data.get(Attr.MEDIA_ID) or media_id),
        status=MediaStatus(data.get(Attr.STATUS, MediaStatus.PENDING.value)),
        sync_timestamp=data.get(Attr.SYNC_TIMESTAMP),
        run_id=data.get(Attr.RUN_ID),
        attempts=int(data.get(Attr.ATTEMPTS, 0)),
        s3_key=data.get(Attr.S3_KEY),
        size=_int_or_none(data.get(Attr.SIZE)),
        checksum=checksum,
        last_error=data.get(Attr.LAST_ERROR),
        note=data.get(Attr.NOTE),
        lease_owner=data.get(Attr.LEASE_OWNER),
        lease_expires_at=None if lease is None else datetime.fromtimestamp(float(lease), UTC),
        filename=data.get(Attr.FILENAME),
        captured_at=data.get(Attr.CAPTURED_AT),
        duration_s=_float_or_none(data.get(Attr.DURATION_S)),
        checkpoint=_from_json_text(data.get(Attr.CHECKPOINT)),
    )


_FLOAT_COUNTERS: dict[str, type] = {"transfer_seconds": float}


def run_from_item(item: Mapping[str, Any]) -> RunRecord:
    data = _deserialize(item)
    return RunRecord(
        run_id=str(data[Attr.RUN_ID]),
        provider=str(data.get(Attr.PROVIDER, "")),
        correlation_id=str(data.get(Attr.CORRELATION_ID, "")),
        started_at=str(data.get(Attr.STARTED_AT, "")),
        **{name: _FLOAT_COUNTERS.get(name, int)(data.get(name, 0)) for name in RUN_COUNTERS},
        lister_error=data.get(Attr.LISTER_ERROR),
        listing_done=bool(data.get(Attr.LISTING_DONE, False)),
        listing_done_at=data.get(Attr.LISTING_DONE_AT),
        report_claimed_at=data.get(Attr.REPORT_CLAIMED_AT),
        report_sent_at=data.get(Attr.REPORT_SENT_AT),
    )


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == _CONDITIONAL_CHECK_FAILED


def _old_item(exc: ClientError) -> dict[str, Any] | None:
    """The item DynamoDB evaluated the failed condition against (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    item = exc.response.get("Item")
    return item or None


# --- the store -------------------------------------------------------------------------------------------------


@dataclass
class StateStore:
    """Media and run state over one DynamoDB table (see the module docstring for the design)."""

    client: Any
    table_name: str
    # Backoff for BatchGetItem's UnprocessedKeys (botocore does not retry those: the call itself succeeded).
    unprocessed_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=2.0)
    )
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def from_settings(cls, settings: Settings) -> StateStore:
        from pipeline.aws_clients import make_client

        return cls(client=make_client("dynamodb", settings), table_name=settings.table_name)

    def _now(self, now: datetime | None) -> datetime:
        moment = now or self.clock()
        if moment.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return moment.astimezone(UTC)

    @staticmethod
    def _media_key(provider: str, media_id: str) -> dict[str, Any]:
        return {resources.TABLE_PARTITION_KEY: {"S": resources.media_key(provider, media_id)}}

    # --- reads ---------------------------------------------------------------------------------------------

    def get(self, provider: str, media_id: str, *, consistent: bool = True) -> MediaRecord | None:
        response = self.client.get_item(
            TableName=self.table_name, Key=self._media_key(provider, media_id), ConsistentRead=consistent
        )
        item = response.get("Item")
        return record_from_item(item) if item else None

    def batch_get(
        self, provider: str, media_ids: Iterable[str], *, consistent: bool = False
    ) -> dict[str, MediaRecord]:
        """Records for the media that have one (absent ids are simply missing from the result).

        BatchGetItem, 100 keys a call, projected to `LISTER_PROJECTION` (other MediaRecord fields are None).
        UnprocessedKeys (DynamoDB throttled part of the batch) are retried with jittered backoff; if some remain
        after `unprocessed_retry.max_attempts` calls, UnprocessedKeysError is raised rather than silently
        treating those media as new. Eventually consistent by default: a medium that completed a moment ago may
        still read IN_PROGRESS and be enqueued again, which the downloader's claim absorbs.
        """
        unique = list(dict.fromkeys(media_ids))  # BatchGetItem rejects duplicate keys
        found: dict[str, MediaRecord] = {}
        for start in range(0, len(unique), BATCH_GET_MAX_KEYS):
            chunk = unique[start : start + BATCH_GET_MAX_KEYS]
            keys = [self._media_key(provider, media_id) for media_id in chunk]
            for item in self._batch_get_chunk(keys, consistent):
                record = record_from_item(item)
                found[record.media_id] = record
        return found

    def _batch_get_chunk(self, keys: list[dict[str, Any]], consistent: bool) -> Iterator[dict[str, Any]]:
        names = {f"#{attr}": attr for attr in LISTER_PROJECTION}
        projection = ", ".join(names)
        delays = self.unprocessed_retry.delays()
        attempt = 0
        pending = keys
        while pending:
            attempt += 1
            response = self.client.batch_get_item(
                RequestItems={
                    self.table_name: {
                        "Keys": pending,
                        "ProjectionExpression": projection,
                        "ExpressionAttributeNames": names,
                        "ConsistentRead": consistent,
                    }
                }
            )
            yield from response.get("Responses", {}).get(self.table_name, [])
            pending = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if not pending:
                return
            if attempt >= self.unprocessed_retry.max_attempts:
                raise UnprocessedKeysError(len(pending), attempt)
            wait = next(delays)
            log.info(
                "BatchGetItem left %d of %d keys unprocessed; retry %d in %.2fs",
                len(pending),
                len(keys),
                attempt,
                wait,
            )
            self.sleep(wait)

    # --- claim and the worker's writes -----------------------------------------------------------------------

    @staticmethod
    def _set_identity(
        e: _Expr,
        status: MediaStatus,
        provider: str,
        media_id: str,
        run_id: str,
        moment: datetime,
        filename: str | None,
        captured_at: str | None,
        size: int | None,
    ) -> None:
        """What every (re)opening write of a medium sets: status, who it is, which run, since when, and the
        listing's facts about it when known."""
        e.set(Attr.STATUS, status)
        e.set(Attr.PROVIDER, provider)
        e.set(Attr.MEDIA_ID, media_id)
        e.set(Attr.RUN_ID, run_id)
        e.set(Attr.SYNC_TIMESTAMP, iso_utc(moment))
        for attr, value in ((Attr.FILENAME, filename), (Attr.CAPTURED_AT, captured_at), (Attr.SIZE, size)):
            if value is not None:
                e.set(attr, value)

    def claim(
        self,
        provider: str,
        media_id: str,
        *,
        owner: str,
        run_id: str,
        lease_seconds: float,
        now: datetime | None = None,
        filename: str | None = None,
        captured_at: str | None = None,
        size: int | None = None,
    ) -> ClaimResult:
        """Take the medium for `owner` for `lease_seconds`, or say why not.

        Succeeds when there is no item, when it is PENDING or FAILED, when it is IN_PROGRESS with an expired
        lease (its worker crashed), or when `owner` itself already holds it (a fresh invocation for the same
        message resuming its own work). Increments `attempts`; keeps any multipart checkpoint for the new owner.
        """
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        moment = self._now(now)
        expires = moment + timedelta(seconds=lease_seconds)
        e = _Expr()
        self._set_identity(
            e, MediaStatus.IN_PROGRESS, provider, media_id, run_id, moment, filename, captured_at, size
        )
        e.set(Attr.LEASE_OWNER, owner)
        e.set(Attr.LEASE_EXPIRES_AT, _epoch(expires))
        attempts = e.n(Attr.ATTEMPTS)
        e.set_expression(f"{attempts} = if_not_exists({attempts}, {e.v(0)}) + {e.v(1)}")
        status, lease_owner, lease_expires = e.n(Attr.STATUS), e.n(Attr.LEASE_OWNER), e.n(Attr.LEASE_EXPIRES_AT)
        condition = (
            f"attribute_not_exists({e.n(Attr.PK)})"
            f" OR {status} IN ({e.v(MediaStatus.PENDING)}, {e.v(MediaStatus.FAILED)})"
            f" OR ({status} = {e.v(MediaStatus.IN_PROGRESS)} AND (attribute_not_exists({lease_expires})"
            f" OR {lease_expires} <= {e.v(_epoch(moment))} OR {lease_owner} = {e.v(owner)}))"
        )
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=self._media_key(provider, media_id),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **e.update_kwargs(condition),
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            current = self._refused_item(exc, provider, media_id)
            if current is not None and current.status is MediaStatus.COMPLETED:
                log.info("claim %s/%s: already COMPLETED", provider, media_id)
                return ClaimResult(ClaimOutcome.ALREADY_COMPLETED, record=current)
            log.info(
                "claim %s/%s: leased by %s until %s",
                provider,
                media_id,
                current.lease_owner if current else "?",
                current.lease_expires_at if current else "?",
            )
            return ClaimResult(
                ClaimOutcome.LEASED_ELSEWHERE,
                record=current,
                lease_owner=current.lease_owner if current else None,
                lease_expires_at=current.lease_expires_at if current else None,
            )
        record = record_from_item(response["Attributes"])
        log.info("claimed %s/%s for %s (attempt %d)", provider, media_id, owner, record.attempts)
        return ClaimResult(ClaimOutcome.CLAIMED, record=record, lease_owner=owner, lease_expires_at=expires)

    def _refused_item(self, exc: ClientError, provider: str, media_id: str) -> MediaRecord | None:
        item = _old_item(exc)
        if item is not None:
            return record_from_item(item)
        # An emulator or an old API version that does not return the item: read it (consistently).
        return self.get(provider, media_id, consistent=True)

    def _owned_update(self, provider: str, media_id: str, owner: str, e: _Expr, what: str) -> TransitionResult:
        """Apply `e` only while `owner` holds the medium IN_PROGRESS; otherwise a typed refusal."""
        condition = (
            f"{e.n(Attr.STATUS)} = {e.v(MediaStatus.IN_PROGRESS)} AND {e.n(Attr.LEASE_OWNER)} = {e.v(owner)}"
        )
        return self._conditional_update(provider, media_id, e, condition, what, owner=owner)

    def _conditional_update(
        self,
        provider: str,
        media_id: str,
        e: _Expr,
        condition: str,
        what: str,
        *,
        owner: str | None = None,
    ) -> TransitionResult:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._media_key(provider, media_id),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **e.update_kwargs(condition),
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            current = self._refused_item(exc, provider, media_id)
            refusal = self._refusal(current, owner=owner)
            # A lost lease is worth a warning (a worker was too slow or a clock is off); the other refusals are
            # the normal answers of an idempotent pipeline (already COMPLETED, someone else is on it).
            level = logging.WARNING if refusal is TransitionRefusal.LEASE_LOST else logging.INFO
            log.log(level, "%s %s/%s refused: %s", what, provider, media_id, refusal.value)
            return TransitionResult(applied=False, refusal=refusal, current=current)
        log.debug("%s %s/%s applied", what, provider, media_id)
        return TransitionResult(applied=True)

    @staticmethod
    def _refusal(current: MediaRecord | None, *, owner: str | None) -> TransitionRefusal:
        if current is None:
            return TransitionRefusal.NOT_FOUND
        if current.status is MediaStatus.COMPLETED:
            return TransitionRefusal.ALREADY_COMPLETED
        # Owner-conditioned writes fail because the caller no longer holds the lease; the lister's and the
        # operator's writes fail (short of COMPLETED) only because a live worker holds it.
        return TransitionRefusal.LEASE_LOST if owner is not None else TransitionRefusal.LEASED_ELSEWHERE

    def renew_lease(
        self, provider: str, media_id: str, *, owner: str, lease_seconds: float, now: datetime | None = None
    ) -> TransitionResult:
        """Push the lease forward while a long transfer runs. Refused (LEASE_LOST) once another worker took over;
        the caller must then stop and abandon its work (its writes would be refused anyway)."""
        expires = self._now(now) + timedelta(seconds=lease_seconds)
        e = _Expr()
        e.set(Attr.LEASE_EXPIRES_AT, _epoch(expires))
        return self._owned_update(provider, media_id, owner, e, "renew_lease")

    def save_checkpoint(
        self,
        provider: str,
        media_id: str,
        *,
        owner: str,
        checkpoint: Mapping[str, Any],
        lease_seconds: float | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Store the multipart progress (an opaque JSON object, at most MAX_CHECKPOINT_BYTES) so a successor can
        continue the upload; optionally renews the lease in the same write."""
        e = _Expr()
        e.set(Attr.CHECKPOINT, _to_json_text(checkpoint, MAX_CHECKPOINT_BYTES, "checkpoint"))
        if lease_seconds is not None:
            e.set(Attr.LEASE_EXPIRES_AT, _epoch(self._now(now) + timedelta(seconds=lease_seconds)))
        return self._owned_update(provider, media_id, owner, e, "save_checkpoint")

    def complete(
        self,
        provider: str,
        media_id: str,
        *,
        owner: str,
        s3_key: str | None,
        size: int | None,
        checksum: Checksum | None,
        duration_s: float | None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Mark COMPLETED (terminal) while `owner` holds the lease; clears the lease, the checkpoint and the last
        error. For a medium deleted at the source: `s3_key=None, size=None, checksum=None, note="source_deleted"`.
        """
        e = _Expr()
        e.set(Attr.STATUS, MediaStatus.COMPLETED)
        e.set(Attr.SYNC_TIMESTAMP, iso_utc(self._now(now)))
        e.set_or_remove(Attr.S3_KEY, s3_key)
        e.set_or_remove(Attr.SIZE, size)
        e.set_or_remove(Attr.CHECKSUM_ALGORITHM, checksum.algorithm if checksum else None)
        e.set_or_remove(Attr.CHECKSUM_VALUE, checksum.value if checksum else None)
        e.set_or_remove(Attr.DURATION_S, duration_s)
        e.set_or_remove(Attr.NOTE, note)
        for attr in (Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT, Attr.CHECKPOINT, Attr.LAST_ERROR):
            e.remove(attr)
        return self._owned_update(provider, media_id, owner, e, "complete")

    def fail(
        self, provider: str, media_id: str, *, owner: str, error: str, now: datetime | None = None
    ) -> TransitionResult:
        """Mark FAILED with `error` (truncated to MAX_ERROR_CHARS; keeping secrets out is the caller's job).

        Used on the message's last receive, just before SQS moves it to the DLQ. The checkpoint is dropped: the
        caller aborts a multipart upload it gives up on.
        """
        e = _Expr()
        e.set(Attr.STATUS, MediaStatus.FAILED)
        e.set(Attr.SYNC_TIMESTAMP, iso_utc(self._now(now)))
        e.set(Attr.LAST_ERROR, truncate_error(error))
        for attr in (Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT, Attr.CHECKPOINT):
            e.remove(attr)
        return self._owned_update(provider, media_id, owner, e, "fail")

    def fail_unclaimed(
        self, provider: str, media_id: str, *, owner: str, run_id: str, error: str, now: datetime | None = None
    ) -> TransitionResult:
        """Mark FAILED without holding the lease, where a claim by `owner` would have applied: no record, PENDING,
        FAILED, IN_PROGRESS with an expired lease, or `owner`'s own lease. Never touches COMPLETED
        (ALREADY_COMPLETED) or a medium another live worker holds (LEASED_ELSEWHERE).

        For a message on its last receive whose claim itself could not be written (throttling that outlasted the
        retries): without this its message reaches the DLQ while the record still says PENDING, and the medium is
        missing from the FAILED list the report and the operator read. Any multipart checkpoint is kept, so the
        next attempt (a redrive, a later night) resumes it.
        """
        moment = self._now(now)
        e = _Expr()
        e.set(Attr.STATUS, MediaStatus.FAILED)
        e.set(Attr.PROVIDER, provider)
        e.set(Attr.MEDIA_ID, media_id)
        e.set(Attr.RUN_ID, run_id)
        e.set(Attr.SYNC_TIMESTAMP, iso_utc(moment))
        e.set(Attr.LAST_ERROR, truncate_error(error))
        attempts = e.n(Attr.ATTEMPTS)
        e.set_expression(f"{attempts} = if_not_exists({attempts}, {e.v(0)})")
        for attr in (Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT):
            e.remove(attr)
        condition = (
            f"{self._reopenable_condition(e, moment, allow_absent=True)} OR {e.n(Attr.LEASE_OWNER)} = {e.v(owner)}"
        )
        return self._conditional_update(provider, media_id, e, condition, "fail_unclaimed")

    def release(
        self, provider: str, media_id: str, *, owner: str, error: str | None = None, now: datetime | None = None
    ) -> TransitionResult:
        """Give the medium back (PENDING) so SQS's redelivery can claim it at once, keeping the checkpoint."""
        e = _Expr()
        e.set(Attr.STATUS, MediaStatus.PENDING)
        e.set(Attr.SYNC_TIMESTAMP, iso_utc(self._now(now)))
        if error is not None:
            e.set(Attr.LAST_ERROR, truncate_error(error))
        for attr in (Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT):
            e.remove(attr)
        return self._owned_update(provider, media_id, owner, e, "release")

    # --- lister and operator writes ------------------------------------------------------------------------------

    def _reopenable_condition(self, e: _Expr, moment: datetime, *, allow_absent: bool) -> str:
        status, lease_expires = e.n(Attr.STATUS), e.n(Attr.LEASE_EXPIRES_AT)
        reopenable = (
            f"{status} IN ({e.v(MediaStatus.PENDING)}, {e.v(MediaStatus.FAILED)})"
            f" OR ({status} = {e.v(MediaStatus.IN_PROGRESS)} AND (attribute_not_exists({lease_expires})"
            f" OR {lease_expires} <= {e.v(_epoch(moment))}))"
        )
        pk = e.n(Attr.PK)
        if allow_absent:
            return f"attribute_not_exists({pk}) OR {reopenable}"
        return f"attribute_exists({pk}) AND ({reopenable})"

    def mark_pending(
        self,
        provider: str,
        media_id: str,
        *,
        run_id: str,
        filename: str | None = None,
        captured_at: str | None = None,
        size: int | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """The lister's write before enqueueing: create a PENDING record, or move a FAILED/PENDING one (or one
        whose worker's lease expired) to PENDING for this run. Never touches COMPLETED (ALREADY_COMPLETED) or a
        medium a live worker holds (LEASED_ELSEWHERE); the lister may still enqueue then, the claim decides.
        """
        moment = self._now(now)
        e = _Expr()
        self._set_identity(e, MediaStatus.PENDING, provider, media_id, run_id, moment, filename, captured_at, size)
        attempts = e.n(Attr.ATTEMPTS)
        e.set_expression(f"{attempts} = if_not_exists({attempts}, {e.v(0)})")
        for attr in (Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT):
            e.remove(attr)
        condition = self._reopenable_condition(e, moment, allow_absent=True)
        return self._conditional_update(provider, media_id, e, condition, "mark_pending")

    def reset_to_pending(self, provider: str, media_id: str, *, now: datetime | None = None) -> TransitionResult:
        """Put an existing FAILED (or stuck, lease-expired) medium back to PENDING, e.g. when its DLQ message is
        redriven. Refuses COMPLETED media, media a live worker holds, and media with no record (NOT_FOUND)."""
        moment = self._now(now)
        e = _Expr()
        e.set(Attr.STATUS, MediaStatus.PENDING)
        e.set(Attr.SYNC_TIMESTAMP, iso_utc(moment))
        for attr in (Attr.LEASE_OWNER, Attr.LEASE_EXPIRES_AT):
            e.remove(attr)
        condition = self._reopenable_condition(e, moment, allow_absent=False)
        return self._conditional_update(provider, media_id, e, condition, "reset_to_pending")

    # --- status index ------------------------------------------------------------------------------------------

    def _status_query_kwargs(
        self, status: MediaStatus, provider: str | None, run_id: str | None
    ) -> dict[str, Any]:
        e = _Expr()
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": resources.STATUS_INDEX_NAME,
            "KeyConditionExpression": f"{e.n(resources.STATUS_INDEX_PARTITION_KEY)} = {e.v(MediaStatus(status))}",
        }
        filters = []
        if provider is not None:
            filters.append(f"{e.n(Attr.PROVIDER)} = {e.v(provider)}")
        if run_id is not None:
            filters.append(f"{e.n(Attr.RUN_ID)} = {e.v(run_id)}")
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        kwargs["ExpressionAttributeNames"] = e.names
        kwargs["ExpressionAttributeValues"] = e.values
        return kwargs

    def count_by_status(self, *, provider: str | None = None, run_id: str | None = None) -> dict[MediaStatus, int]:
        """How many media are in each status (optionally of one provider / last touched by one run), through the
        status index: one paginated `Select=COUNT` Query per status, never a table scan. The index is eventually
        consistent, so a count can lag a write by a moment."""
        counts: dict[MediaStatus, int] = {}
        for status in MediaStatus:
            kwargs = self._status_query_kwargs(status, provider, run_id)
            kwargs["Select"] = "COUNT"
            total = 0
            while True:
                response = self.client.query(**kwargs)
                total += int(response.get("Count", 0))
                last = response.get("LastEvaluatedKey")
                if not last:
                    break
                kwargs["ExclusiveStartKey"] = last
            counts[status] = total
        return counts

    def list_by_status(
        self,
        status: MediaStatus,
        limit: int = 100,
        *,
        provider: str | None = None,
        run_id: str | None = None,
        oldest_first: bool = True,
    ) -> list[MediaRecord]:
        """Up to `limit` media in `status`, ordered by `sync_timestamp` (time in that status)."""
        if limit <= 0:
            return []
        kwargs = self._status_query_kwargs(status, provider, run_id)
        kwargs["ScanIndexForward"] = oldest_first
        records: list[MediaRecord] = []
        while len(records) < limit:
            # With a filter, Limit counts items read before filtering: read in pages and stop once enough matched.
            kwargs["Limit"] = 100 if "FilterExpression" in kwargs else limit - len(records)
            response = self.client.query(**kwargs)
            records.extend(record_from_item(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        return records[:limit]

    # --- run records ---------------------------------------------------------------------------------------

    @staticmethod
    def _run_key(run_id: str) -> dict[str, Any]:
        return {resources.TABLE_PARTITION_KEY: {"S": resources.run_key(run_id)}}

    def create_run(self, run_id: str, *, correlation_id: str, started_at: datetime | str, provider: str) -> bool:
        """Create the run record with zeroed counters. False when it already exists (a continued listing)."""
        started = iso_utc(started_at) if isinstance(started_at, datetime) else started_at
        item: dict[str, Any] = {
            resources.TABLE_PARTITION_KEY: resources.run_key(run_id),
            Attr.RUN_ID: run_id,
            Attr.PROVIDER: provider,
            Attr.CORRELATION_ID: correlation_id,
            Attr.STARTED_AT: started,
            Attr.LISTING_DONE: False,
        }
        for counter in RUN_COUNTERS:
            item[counter] = 0
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={name: _serializer.serialize(value) for name, value in item.items()},
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": resources.TABLE_PARTITION_KEY},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            log.info("run %s already exists", run_id)
            return False
        log.info("created run %s (correlation %s)", run_id, correlation_id)
        self._point_latest_run(provider, run_id, started)
        return True

    @staticmethod
    def _latest_run_key(provider: str) -> dict[str, Any]:
        key = f"{LATEST_RUN_KEY_PREFIX}{resources.KEY_SEPARATOR}{provider}"
        return {resources.TABLE_PARTITION_KEY: {"S": key}}

    def _point_latest_run(self, provider: str, run_id: str, started: str) -> None:
        """Make `latest-run#<provider>` name this run unless it already names a later one.

        Why: the summary asks for the latest run on every drain, and without the pointer that is a Scan of the
        whole table (about 30 one-MB pages at 100,000 media). Conditional on `started_at` so runs created out of
        order (or a slow continuation) never move the pointer back.
        """
        e = _Expr()
        e.set(Attr.RUN_ID, run_id)
        e.set(Attr.STARTED_AT, started)
        started_name, run_name = e.n(Attr.STARTED_AT), e.n(Attr.RUN_ID)
        started_value, run_value = e.v(started), e.v(run_id)
        condition = (
            f"attribute_not_exists({e.n(Attr.PK)}) OR {started_name} < {started_value}"
            f" OR ({started_name} = {started_value} AND {run_name} <= {run_value})"
        )
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._latest_run_key(provider), **e.update_kwargs(condition)
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            log.info("run %s is not the latest of %s; pointer kept", run_id, provider)

    def update_run(
        self,
        run_id: str,
        *,
        lister_error: str | None = None,
        listing_done: bool | None = None,
        now: datetime | None = None,
        **counters: float,
    ) -> bool:
        """Add to the run's counters (keywords named in RUN_COUNTERS; atomic ADD: the lister's invocations and the
        downloaders all add, nobody overwrites) and set `lister_error` / `listing_done` when given. Returns False
        if the run does not exist (nothing is created: a stray counter must not invent a run)."""
        exists, _ = self._update_run(
            run_id, counters, lister_error=lister_error, listing_done=listing_done, now=now, returning=False
        )
        return exists

    def finish_listing(
        self,
        run_id: str,
        *,
        lister_error: str | None = None,
        now: datetime | None = None,
        **counters: float,
    ) -> RunRecord | None:
        """The lister's last write of a run: its remaining counters and `listing_done`, in one UpdateItem that
        answers with the whole record (so deciding whether to report needs no second read). None if the run does
        not exist."""
        _, record = self._update_run(
            run_id, counters, lister_error=lister_error, listing_done=True, now=now, returning=True
        )
        return record

    def _update_run(
        self,
        run_id: str,
        counters: Mapping[str, float],
        *,
        lister_error: str | None,
        listing_done: bool | None,
        now: datetime | None,
        returning: bool,
    ) -> tuple[bool, RunRecord | None]:
        """`update_run` and `finish_listing`: (whether the run exists, the updated record when `returning`)."""
        unknown = set(counters) - set(RUN_COUNTERS)
        if unknown:
            raise ValueError(f"unknown run counters: {', '.join(sorted(unknown))}")
        e = _Expr()
        for name, amount in counters.items():
            if amount:
                e.add(name, amount)
        if lister_error is not None:
            e.set(Attr.LISTER_ERROR, truncate_error(lister_error))
        if listing_done is not None:
            e.set(Attr.LISTING_DONE, bool(listing_done))
            if listing_done:
                e.set(Attr.LISTING_DONE_AT, iso_utc(self._now(now)))
        if not e.names:
            return True, None
        kwargs = e.update_kwargs(f"attribute_exists({e.n(Attr.PK)})")
        if returning:
            kwargs["ReturnValues"] = "ALL_NEW"
        try:
            response = self.client.update_item(TableName=self.table_name, Key=self._run_key(run_id), **kwargs)
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            log.warning("update_run: run %s does not exist", run_id)
            return False, None
        attributes = response.get("Attributes") if returning else None
        return True, run_from_item(attributes) if attributes else None

    def get_run(self, run_id: str) -> RunRecord | None:
        response = self.client.get_item(TableName=self.table_name, Key=self._run_key(run_id), ConsistentRead=True)
        item = response.get("Item")
        return run_from_item(item) if item else None

    def latest_runs(self, n: int = 1, *, provider: str | None = None) -> list[RunRecord]:
        """The `n` most recent runs by `started_at`, newest first.

        The latest run of one provider (what the summary asks for on every drain) is two GetItems through the
        `latest-run#<provider>` pointer that `create_run` keeps. Anything else (several runs, every provider, a
        table from before the pointer) is a paginated Scan filtered on the `run#` key prefix: a full read of the
        table (about 1 read unit per 8 KB, eventually consistent), fine for an operator's status command.
        """
        if n <= 0:
            return []
        if n == 1 and provider is not None:
            latest = self._latest_run(provider)
            if latest is not None:
                return [latest]
        e = _Expr()
        condition = f"begins_with({e.n(Attr.PK)}, {e.v(resources.run_key(''))})"
        if provider is not None:
            condition += f" AND {e.n(Attr.PROVIDER)} = {e.v(provider)}"
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": condition,
            "ExpressionAttributeNames": e.names,
            "ExpressionAttributeValues": e.values,
        }
        runs: list[RunRecord] = []
        while True:
            response = self.client.scan(**kwargs)
            runs.extend(run_from_item(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        runs.sort(key=lambda run: (run.started_at, run.run_id), reverse=True)
        return runs[:n]

    def _latest_run(self, provider: str) -> RunRecord | None:
        response = self.client.get_item(
            TableName=self.table_name, Key=self._latest_run_key(provider), ConsistentRead=True
        )
        item = response.get("Item")
        run_id = _deserialize(item).get(Attr.RUN_ID) if item else None
        if not isinstance(run_id, str):
            return None
        run = self.get_run(run_id)
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
        e = _Expr()
        e.set(Attr.REPORT_CLAIMED_AT, iso_utc(moment))
        claimed = e.n(Attr.REPORT_CLAIMED_AT)
        condition = (
            f"attribute_exists({e.n(Attr.PK)}) AND attribute_not_exists({e.n(Attr.REPORT_SENT_AT)})"
            f" AND (attribute_not_exists({claimed}) OR {claimed} < {e.v(stale)})"
        )
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._run_key(run_id), **e.update_kwargs(condition)
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            log.info("report for run %s already claimed or sent", run_id)
            return False
        log.info("claimed the report of run %s", run_id)
        return True

    def release_report_claim(self, run_id: str) -> None:
        """Give a claimed report back (its publish failed), so the summary's retry can send it at once instead
        of waiting for the claim to go stale. Does nothing once the report was sent."""
        e = _Expr()
        e.remove(Attr.REPORT_CLAIMED_AT)
        condition = f"attribute_exists({e.n(Attr.PK)}) AND attribute_not_exists({e.n(Attr.REPORT_SENT_AT)})"
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._run_key(run_id), **e.update_kwargs(condition)
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    def mark_report_sent(self, run_id: str, *, now: datetime | None = None) -> None:
        """Record that the report was published: no later `claim_report` for this run succeeds."""
        e = _Expr()
        e.set(Attr.REPORT_SENT_AT, iso_utc(self._now(now)))
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._run_key(run_id),
                **e.update_kwargs(f"attribute_exists({e.n(Attr.PK)})"),
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            raise StateStoreError(f"run {run_id} does not exist") from None

    # --- listing cursor ------------------------------------------------------------------------------------

    @staticmethod
    def _cursor_key(provider: str) -> dict[str, Any]:
        return {resources.TABLE_PARTITION_KEY: {"S": resources.cursor_key(provider)}}

    def get_cursor(self, provider: str) -> dict[str, Any] | None:
        """The lister's saved position for `provider` (the dict last given to `put_cursor`), or None."""
        response = self.client.get_item(
            TableName=self.table_name, Key=self._cursor_key(provider), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        return _from_json_text(_deserialize(item).get(Attr.CURSOR))

    def put_cursor(self, provider: str, cursor: Mapping[str, Any], *, now: datetime | None = None) -> None:
        """Save the lister's position (any JSON object, e.g. page, high_water_mark, last_full_reconcile_at)."""
        item = {
            resources.TABLE_PARTITION_KEY: resources.cursor_key(provider),
            Attr.PROVIDER: provider,
            Attr.CURSOR: _to_json_text(cursor, MAX_CURSOR_BYTES, "cursor"),
            Attr.UPDATED_AT: iso_utc(self._now(now)),
        }
        self.client.put_item(
            TableName=self.table_name, Item={name: _serializer.serialize(value) for name, value in item.items()}
        )

    def delete_cursor(self, provider: str) -> None:
        """Forget the saved position (the next listing starts from the beginning)."""
        self.client.delete_item(TableName=self.table_name, Key=self._cursor_key(provider))
