"""The claim of a message's last receive records FAILED up front (under the lease), and `list_abandoned`.

Why it matters: a worker killed on its last receive writes nothing more, and SQS moves its message to the DLQ;
the record must already say FAILED. While the worker lives, its lease still guards the medium (no one else
claims or reopens it), and every write it makes replaces the up-front FAILED. Both backends, as in
`test_backends`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.state import Checksum, ClaimOutcome, MediaStatus, StateStore, TransitionRefusal, ensure_table

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
P = "gopro"
DIED = "its worker stopped on the message's last receive"


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield StateStore.in_memory(clock=lambda: T0)
        return
    aws = request.getfixturevalue("aws")
    client = aws.client("dynamodb")
    ensure_table(client, "state-last-receive")
    yield StateStore(client, "state-last-receive", sleep=lambda _s: None, clock=lambda: T0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def last_claim(store: StateStore, media_id: str, owner: str = "msg-1", now: datetime = T0) -> object:
    return store.media.claim(
        P, media_id, owner=owner, run_id="run-1", lease_seconds=60, now=now, final_error=DIED, filename="a.mp4"
    )


def test_a_last_receive_claim_is_failed_with_its_reason_under_the_lease(store: StateStore) -> None:
    claimed = last_claim(store, "last0001")
    assert claimed.outcome is ClaimOutcome.CLAIMED
    record = store.media.get(P, "last0001")
    assert record.status is MediaStatus.FAILED
    assert record.last_error == DIED
    assert record.lease_owner == "msg-1"


def test_while_its_worker_lives_nobody_else_claims_or_reopens_it(store: StateStore) -> None:
    last_claim(store, "last0002")
    other = store.media.claim(P, "last0002", owner="msg-2", run_id="run-1", lease_seconds=60, now=at(30))
    assert other.outcome is ClaimOutcome.LEASED_ELSEWHERE
    assert store.media.reset_to_pending(P, "last0002", now=at(30)).refusal is TransitionRefusal.LEASED_ELSEWHERE
    # Once the lease ran out (the worker died long ago), a redrive or a later night takes it as any FAILED.
    assert store.media.reset_to_pending(P, "last0002", now=at(61))
    assert store.media.get(P, "last0002").status is MediaStatus.PENDING


def test_the_worker_s_own_writes_replace_the_up_front_failed(store: StateStore) -> None:
    last_claim(store, "last0003")
    assert store.media.save_checkpoint(P, "last0003", owner="msg-1", checkpoint={"key": "k"}, now=at(1))
    done = store.media.complete(
        P,
        "last0003",
        owner="msg-1",
        s3_key="k",
        size=7,
        checksum=Checksum("CRC32C", "AAAAAA=="),
        duration_s=1.0,
        now=at(2),
    )
    assert done
    record = store.media.get(P, "last0003")
    assert (record.status, record.last_error) == (MediaStatus.COMPLETED, None)
    last_claim(store, "last0004")
    assert store.media.fail(P, "last0004", owner="msg-1", error="SizeMismatch: real reason", now=at(2))
    assert store.media.get(P, "last0004").last_error == "SizeMismatch: real reason"


def test_an_ordinary_failed_record_is_claimable_at_once(store: StateStore) -> None:
    store.media.claim(P, "fail0001", owner="msg-1", run_id="run-1", lease_seconds=60, now=T0)
    store.media.fail(P, "fail0001", owner="msg-1", error="x", now=T0)
    again = store.media.claim(P, "fail0001", owner="msg-2", run_id="run-2", lease_seconds=60, now=at(1))
    assert again.outcome is ClaimOutcome.CLAIMED


def test_list_abandoned_holds_in_progress_media_past_their_lease_only(store: StateStore) -> None:
    store.media.claim(P, "gone0001", owner="msg-1", run_id="run-1", lease_seconds=60, now=T0)
    store.media.claim(P, "live0001", owner="msg-2", run_id="run-1", lease_seconds=600, now=T0)
    last_claim(store, "last0005")
    assert store.media.list_abandoned(now=at(30)) == []
    assert [r.media_id for r in store.media.list_abandoned(now=at(61))] == ["gone0001"]
