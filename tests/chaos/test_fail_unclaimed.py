"""`store.media.fail_unclaimed`, added when chaos found a throttled last-receive claim leaving a DLQ message beside
a PENDING record: it records FAILED exactly where a claim by the same owner would have applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.state import MediaStatus, StateStore, TransitionRefusal, ensure_table

pytestmark = pytest.mark.integration
T0 = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(aws: Any) -> StateStore:
    client = aws.client("dynamodb")
    ensure_table(client, "chaos-table")
    return StateStore(client=client, table_name="chaos-table")


def _fail(store: StateStore, media_id: str, owner: str = "msg-1", at: datetime = T0) -> Any:
    return store.media.fail_unclaimed(
        "gopro", media_id, owner=owner, run_id="run-1", error="Throttled: claim", now=at
    )


def test_a_medium_without_a_record_or_pending_is_recorded_failed(store: StateStore) -> None:
    assert _fail(store, "absent01")
    store.media.claim("gopro", "pending1", owner="msg-0", run_id="run-0", lease_seconds=60, now=T0)
    store.media.release("gopro", "pending1", owner="msg-0", now=T0)
    assert _fail(store, "pending1")
    for media_id in ("absent01", "pending1"):
        record = store.media.get("gopro", media_id)
        assert record.status is MediaStatus.FAILED
        assert record.last_error == "Throttled: claim"
        assert record.lease_owner is None


def test_its_own_or_an_expired_lease_is_failed_and_the_checkpoint_kept(store: StateStore) -> None:
    store.media.claim("gopro", "mine0001", owner="msg-1", run_id="run-1", lease_seconds=60, now=T0)
    store.media.save_checkpoint(
        "gopro", "mine0001", owner="msg-1", checkpoint={"key": "k", "multipart": {}}, now=T0
    )
    assert _fail(store, "mine0001")
    assert store.media.get("gopro", "mine0001").checkpoint == {"key": "k", "multipart": {}}
    store.media.claim("gopro", "expired1", owner="msg-9", run_id="run-1", lease_seconds=60, now=T0)
    assert _fail(store, "expired1", at=T0 + timedelta(seconds=61))


def test_completed_and_live_leases_of_others_are_left_alone(store: StateStore) -> None:
    store.media.claim("gopro", "done0001", owner="msg-9", run_id="run-1", lease_seconds=60, now=T0)
    store.media.complete(
        "gopro", "done0001", owner="msg-9", s3_key="k", size=1, checksum=None, duration_s=1.0, now=T0
    )
    assert _fail(store, "done0001").refusal is TransitionRefusal.ALREADY_COMPLETED
    store.media.claim("gopro", "busy0001", owner="msg-9", run_id="run-1", lease_seconds=60, now=T0)
    assert _fail(store, "busy0001", at=T0 + timedelta(seconds=30)).refusal is TransitionRefusal.LEASED_ELSEWHERE
    assert store.media.get("gopro", "done0001").status is MediaStatus.COMPLETED
    assert store.media.get("gopro", "busy0001").status is MediaStatus.IN_PROGRESS
