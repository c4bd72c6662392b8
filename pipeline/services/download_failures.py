"""What a delivery's failure means, and the record writes that must land whatever the table does.

Why apart from the downloader: these are the policy decisions (which failures go to the DLQ at once, when a 404
is a deletion, how soon SQS tries again, what a last receive records up front) and the retried writes they rely
on; the downloader around them only sequences claim, archive and outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import resources
from pipeline.deadline import Deadline
from pipeline.errors import SyncError, is_transient
from pipeline.observability.redaction import redact
from pipeline.providers.base import CloudProvider
from pipeline.providers.errors import AuthError
from pipeline.retry import RetryPolicy, call_with_retry
from pipeline.sqs_delivery import SqsDelivery
from pipeline.state import NOTE_NOT_FOUND, NOTE_SOURCE_DELETED, MediaRecord, StateStore
from pipeline.transfer.errors import ChecksumMismatch, SourceError

log = logging.getLogger(__name__)

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


class RecordWrites:
    """The downloader's writes to the state store, retried briefly beyond botocore's own retries."""

    def __init__(self, state: StateStore, sleep: Callable[[float], None]) -> None:
        self._state = state
        self._sleep = sleep

    def write(self, write: Callable[..., Any], provider: str, media_id: str, **kwargs: Any) -> Any:
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

    def add_to_run(self, run_id: str, **counters: Any) -> None:
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


def fails_fast(exc: BaseException) -> bool:
    """Whether retrying cannot fix `exc`, so its message goes to the DLQ on its first receive.

    The project's own errors say so with `transient`; anything else (a bug, a library's error) keeps the three
    receives. Three permanent-looking kinds keep them too, because the next delivery is not a repeat of this one:
    a refused, expired or vanished link (403, 404, 410 from the content host: it resolves a fresh one, and a
    medium deleted meanwhile then answers the provider's own 404, which `deletion_confirmed` weighs), bytes that
    changed on the way (a checksum mismatch: it reads them again), and credentials (a person signs in again, and
    the remaining receives succeed).
    """
    if not isinstance(exc, SyncError) or is_transient(exc):
        return False
    if isinstance(exc, (AuthError, ChecksumMismatch)):
        return False
    return not (isinstance(exc, SourceError) and exc.status in LINK_STATUSES)


# Content-host answers about the link rather than the medium: the next delivery resolves a fresh one.
LINK_STATUSES = frozenset({403, 404, 410})


def died_on_last_receive(delivery: Delivery) -> str:
    """The reason a last-receive claim records up front (replaced by the real outcome when there is one)."""
    return (
        f"its worker stopped on the message's last receive ({delivery.receive_count} of "
        f"{resources.MAX_RECEIVE_COUNT}) before recording an outcome (killed, out of memory or timed out); "
        "the message is in the DLQ"
    )


def deletion_confirmed(provider: CloudProvider, media_id: str, record: MediaRecord | None) -> tuple[bool, str]:
    """Whether a 404 proves the medium is gone, and why not when it does not.

    One 404 is weak evidence (GoPro answers it for a trashed medium, and now and then in passing): a deletion is
    confirmed only by a second 404 (the record already carries the note) AND a fresh walk of the listing without
    the medium. A walk that fails or cannot tell (a short page) confirms nothing.
    """
    if record is None or record.note not in (NOTE_NOT_FOUND, NOTE_SOURCE_DELETED):
        return False, "first 404"
    try:
        listed = provider.still_listed(media_id)
    except Exception as exc:  # the walk failing is no evidence either way
        log.warning("could not check the listing for %s: %s", media_id, redact(str(exc)))
        listed = None
    if listed is False:
        return True, "absent from a fresh listing"
    return False, "still listed" if listed else "the listing could not tell"


def retry_soon(sqs: Any, queue_url: str | None, delivery: Delivery) -> None:
    """Shortens the wait before SQS redelivers a failed record (the queue's visibility timeout is 90 min)."""
    if not delivery.receipt_handle:
        return
    delays = resources.RETRY_VISIBILITY_SECONDS
    delay = delays[min(delivery.receive_count, len(delays)) - 1]
    try:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=delivery.receipt_handle, VisibilityTimeout=delay
        )
    except Exception as exc:  # the retry still happens, only later
        log.warning("could not shorten the retry delay: %s", exc)
