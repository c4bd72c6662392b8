"""The in-memory state backend answers as the DynamoDB one does, for the main transitions of every record kind.

Each test runs twice: against a table on the moto server and against `StateStore.in_memory()`. Both evaluate the
same condition and update objects, so what this pins is each backend's reading of them (absent attributes,
numeric comparisons, the sparse index, ADD and if_not_exists); the rules themselves are tested once, in
`tests/integration/state/test_store.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.state import (
    Checksum,
    ClaimOutcome,
    MediaStatus,
    StateStore,
    StateStoreError,
    TransitionRefusal,
    ensure_table,
)
from pipeline.state.conditions import claimable, held_by, reopenable
from pipeline.state.expressions import Placeholders
from tests.fixtures.state import seed_pending

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
P = "gopro"
CHECKSUM = Checksum("CRC32C", "AAAAAA==")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield StateStore.in_memory(clock=lambda: T0)
        return
    aws = request.getfixturevalue("aws")
    client = aws.client("dynamodb")
    ensure_table(client, "state-backends")
    yield StateStore(client, "state-backends", sleep=lambda _s: None, clock=lambda: T0)


def claim(store: StateStore, media_id: str, owner: str, now: datetime, lease: float = 60) -> Any:
    return store.media.claim(P, media_id, owner=owner, run_id="run-1", lease_seconds=lease, now=now, size=7)


def complete(store: StateStore, media_id: str, owner: str, now: datetime) -> Any:
    return store.media.complete(
        P, media_id, owner=owner, s3_key=f"k/{media_id}", size=7, checksum=CHECKSUM, duration_s=0.5, now=now
    )


def test_claim_lease_takeover_and_terminal_completed(store: StateStore) -> None:
    first = claim(store, "m1", "w1", T0)
    assert first.outcome is ClaimOutcome.CLAIMED
    assert store.media.save_checkpoint(P, "m1", owner="w1", checkpoint={"upload_id": "u"})
    refused = claim(store, "m1", "w2", at(59))
    assert refused.outcome is ClaimOutcome.LEASED_ELSEWHERE
    assert refused.lease_owner == "w1"
    assert refused.lease_expires_at == at(60)
    again = claim(store, "m1", "w1", at(10))  # the owner itself may reclaim
    assert again.claimed
    assert again.record.attempts == 2
    taken = claim(store, "m1", "w2", at(71))
    assert taken.claimed
    assert taken.record.attempts == 3
    assert taken.record.checkpoint == {"upload_id": "u"}

    lost = complete(store, "m1", "w1", at(72))
    assert not lost
    assert lost.refusal is TransitionRefusal.LEASE_LOST
    assert lost.current.lease_owner == "w2"
    assert complete(store, "m1", "w2", at(73))

    record = store.media.get(P, "m1")
    assert record is not None
    assert (record.status, record.size, record.checksum, record.duration_s) == (
        MediaStatus.COMPLETED,
        7,
        CHECKSUM,
        0.5,
    )
    assert (record.lease_owner, record.lease_expires_at, record.checkpoint) == (None, None, None)
    assert record.sync_timestamp == "2024-05-01T02:01:13.000Z"
    late = claim(store, "m1", "w3", at(10_000))
    assert late.outcome is ClaimOutcome.ALREADY_COMPLETED
    assert late.record.s3_key == "k/m1"
    assert store.media.reset_to_pending(P, "m1").refusal is TransitionRefusal.ALREADY_COMPLETED
    unclaimed = store.media.fail_unclaimed(P, "m1", owner="w3", run_id="r", error="x")
    assert unclaimed.refusal is TransitionRefusal.ALREADY_COMPLETED


def test_fail_release_reset_and_fail_unclaimed(store: StateStore) -> None:
    assert store.media.reset_to_pending(P, "none").refusal is TransitionRefusal.NOT_FOUND
    assert store.media.fail(P, "none", owner="w1", error="x").refusal is TransitionRefusal.NOT_FOUND

    assert claim(store, "m1", "w1", T0)
    assert store.media.reset_to_pending(P, "m1", now=at(30)).refusal is TransitionRefusal.LEASED_ELSEWHERE
    assert store.media.fail(P, "m1", owner="w1", error="e" * 5000, now=at(31))
    failed = store.media.get(P, "m1")
    assert failed is not None
    assert failed.status is MediaStatus.FAILED
    assert failed.last_error is not None
    assert len(failed.last_error) == 1000
    assert store.media.reset_to_pending(P, "m1", now=at(32))
    assert store.media.get(P, "m1").status is MediaStatus.PENDING  # type: ignore[union-attr]

    assert claim(store, "m2", "w1", T0)
    assert store.media.save_checkpoint(P, "m2", owner="w1", checkpoint={"p": 1})
    assert store.media.release(P, "m2", owner="w1", error="timeout", now=at(5))
    released = store.media.get(P, "m2")
    assert released is not None
    assert (released.status, released.last_error, released.checkpoint) == (
        MediaStatus.PENDING,
        "timeout",
        {"p": 1},
    )

    assert store.media.fail_unclaimed(P, "m3", owner="w9", run_id="r", error="Throttled", now=T0)
    fresh = store.media.get(P, "m3")
    assert fresh is not None
    assert (fresh.status, fresh.attempts, fresh.run_id) == (MediaStatus.FAILED, 0, "r")
    assert claim(store, "m4", "w1", T0)
    busy = store.media.fail_unclaimed(P, "m4", owner="w9", run_id="r", error="x", now=at(1))
    assert busy.refusal is TransitionRefusal.LEASED_ELSEWHERE
    assert store.media.fail_unclaimed(P, "m4", owner="w1", run_id="r", error="x", now=at(1))  # its own lease
    assert store.media.get(P, "m4").attempts == 1  # type: ignore[union-attr]


def test_status_index_counts_lists_and_batch_get(store: StateStore) -> None:
    for i in range(3):
        assert seed_pending(store, P, f"p{i}", run_id="run-1", now=at(i))
    assert seed_pending(store, "other", "p0", run_id="run-9", now=T0)
    assert claim(store, "c0", "w", T0)
    assert complete(store, "c0", "w", at(10))
    assert claim(store, "i0", "w", T0)
    assert store.runs.create("run-1", correlation_id="c", started_at=T0, provider=P)
    store.cursors.put(P, {"page": 1})

    assert store.media.count_by_status() == {
        MediaStatus.PENDING: 4,
        MediaStatus.IN_PROGRESS: 1,
        MediaStatus.COMPLETED: 1,
        MediaStatus.FAILED: 0,
    }
    assert store.media.count_by_status(provider="other", run_id="run-9")[MediaStatus.PENDING] == 1
    pending = store.media.list_by_status(MediaStatus.PENDING, limit=2, provider=P)
    assert [r.media_id for r in pending] == ["p0", "p1"]
    newest = store.media.list_by_status(MediaStatus.PENDING, limit=1, provider=P, oldest_first=False)
    assert [r.media_id for r in newest] == ["p2"]

    found = store.media.batch_get(P, ["p0", "i0", "absent", "p0"])
    assert set(found) == {"p0", "i0"}
    assert found["i0"].lease_expires_at == at(60)
    assert found["i0"].lease_owner is None  # projected away
    assert found["p0"].size is None
    assert found["i0"].size == 7


def test_runs_counters_pointer_and_report_claims(store: StateStore) -> None:
    assert not store.runs.update("nope", synced=1)
    assert store.runs.finish_listing("nope", listed=1) is None
    for day in (3, 1, 2):
        started = datetime(2024, 5, day, 2, 0, tzinfo=UTC)
        assert store.runs.create(f"run-{day}", correlation_id=f"c{day}", started_at=started, provider=P)
    assert not store.runs.create("run-3", correlation_id="again", started_at=T0, provider=P)
    assert store.runs.update("run-3", synced=2, bytes_transferred=10, transfer_seconds=0.25)
    assert store.runs.update("run-3", synced=1, transfer_seconds=0.25, lister_error="boom")
    run = store.runs.finish_listing("run-3", listed=5, now=at(9))
    assert run is not None
    assert (run.synced, run.listed, run.bytes_transferred, run.transfer_seconds) == (3, 5, 10, 0.5)
    assert (run.listing_done, run.listing_done_at, run.lister_error) == (True, "2024-05-01T02:00:09.000Z", "boom")
    assert run.correlation_id == "c3"

    assert [r.run_id for r in store.runs.latest(1, provider=P)] == ["run-3"]
    assert [r.run_id for r in store.runs.latest(10)] == ["run-3", "run-2", "run-1"]

    assert not store.runs.claim_report("nope")
    assert store.runs.claim_report("run-3", now=T0)
    assert not store.runs.claim_report("run-3", now=at(60))
    store.runs.release_report_claim("run-3")
    assert store.runs.claim_report("run-3", now=at(61))
    assert store.runs.claim_report("run-3", now=at(61 + 901))  # stale
    store.runs.mark_report_sent("run-3", now=at(1000))
    assert not store.runs.claim_report("run-3", now=at(100_000))
    assert store.runs.get("run-3").report_sent_at == "2024-05-01T02:16:40.000Z"  # type: ignore[union-attr]
    with pytest.raises(StateStoreError):
        store.runs.mark_report_sent("nope")


def test_unreported_runs_leased_elsewhere_ids_and_the_archive_total(store: StateStore) -> None:
    """The set of unreported runs (ADD, then DELETE), bounded ids beside a counter, and the status-index sum."""
    for day in (1, 2):
        started = datetime(2024, 5, day, 2, 0, tzinfo=UTC)
        assert store.runs.create(f"run-{day}", correlation_id="c", started_at=started, provider=P)
    assert [r.run_id for r in store.runs.unreported(P, 10)] == ["run-1", "run-2"]
    store.runs.mark_report_sent("run-1", now=T0, provider=P)
    assert [r.run_id for r in store.runs.unreported(P, 10)] == ["run-2"]
    store.runs.mark_report_sent("run-2", now=T0, provider=P)
    assert store.runs.unreported(P, 10) == []  # the emptied set is gone, as DynamoDB does it

    assert store.runs.update("run-2", leased_elsewhere=1, leased_elsewhere_id="m1")
    assert store.runs.update("run-2", leased_elsewhere=1, leased_elsewhere_id="m2", duplicates=1)
    assert not store.runs.update("nope", leased_elsewhere=1, leased_elsewhere_id="m1")
    run = store.runs.get("run-2")
    assert run is not None
    assert (run.leased_elsewhere, run.duplicates, run.leased_elsewhere_ids) == (2, 1, ("m1", "m2"))

    for media_id in ("c1", "c2"):
        assert claim(store, media_id, "w", T0)
        assert complete(store, media_id, "w", at(1))
    assert claim(store, "gone", "w", T0)
    store.media.complete(
        P, "gone", owner="w", s3_key=None, size=None, checksum=None, duration_s=None, note="source_deleted"
    )
    assert claim(store, "busy", "w", T0)
    total = store.totals.archived(P)
    assert (total.media, total.bytes) == (2, 14)
    assert store.totals.archived("other").media == 0


def test_cursors_round_trip(store: StateStore) -> None:
    assert store.cursors.get(P) is None
    cursor = {"page": 7, "high_water_mark": "2024-05-01T00:00:00Z", "last_full_reconcile_at": None}
    store.cursors.put(P, cursor)
    store.cursors.put("other", {"page": 1})
    assert store.cursors.get(P) == cursor
    assert store.cursors.get("other") == {"page": 1}
    with pytest.raises(ValueError, match="bytes"):
        store.cursors.put(P, {"big": "x" * 70_000})


def test_named_conditions_render_with_placeholders_only() -> None:
    p = Placeholders()
    text = " AND ".join(c.render(p) for c in (claimable("w", T0), held_by("w"), reopenable(T0)))
    assert "status" not in text.replace("#status", "")  # every name through a placeholder (reserved words)
    assert set(p.names.values()) == {"pk", "status", "lease_owner", "lease_expires_at", "note"}
    assert repr(claimable("w", T0)) == "claimable"
