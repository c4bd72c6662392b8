"""Media records against a real moto server: batch reads, claims and leases, COMPLETED as terminal, the index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipeline import resources
from pipeline.retry import RetryPolicy
from pipeline.state import (
    MAX_ERROR_CHARS,
    ClaimOutcome,
    MediaStatus,
    StateStore,
    TransitionRefusal,
    UnprocessedKeysError,
)
from tests.fixtures.aws import MotoStack
from tests.fixtures.state import seed_pending
from tests.integration.state.conftest import TABLE
from tests.integration.state.support import CHECKSUM, PROVIDER, T0, at, claim, complete, run_concurrently, seed

pytestmark = pytest.mark.integration


# --- batch_get ---------------------------------------------------------------------------------------------------


class UnprocessedInjector:
    """An `after-call` hook on a real client: moves some returned items into UnprocessedKeys, as DynamoDB does
    when it throttles part of a batch. `rounds` calls are degraded; later calls pass through."""

    def __init__(self, client: Any, rounds: int, keep_fraction: float = 0.5) -> None:
        self.rounds = rounds
        self.keep_fraction = keep_fraction
        self.calls = 0
        self.request_sizes: list[int] = []
        client.meta.events.register("provide-client-params.dynamodb.BatchGetItem", self._count)
        client.meta.events.register("after-call.dynamodb.BatchGetItem", self._degrade)

    def _count(self, params: dict[str, Any], **_: Any) -> None:
        self.request_sizes.append(sum(len(table["Keys"]) for table in params["RequestItems"].values()))

    def _degrade(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        if self.calls > self.rounds:
            return
        for table, items in parsed.get("Responses", {}).items():
            keep = int(len(items) * self.keep_fraction)
            dropped = items[keep:]
            del items[keep:]
            if dropped:
                keys = [{resources.TABLE_PARTITION_KEY: item[resources.TABLE_PARTITION_KEY]} for item in dropped]
                parsed.setdefault("UnprocessedKeys", {}).setdefault(table, {"Keys": []})["Keys"].extend(keys)


def test_batch_get_over_100_keys_retries_unprocessed_keys(
    store: StateStore, dynamodb: Any, slept: list[float]
) -> None:
    ids = [f"vid{i:04d}" for i in range(250)]
    seed(store, ids[:230])  # 20 have no record yet
    injector = UnprocessedInjector(dynamodb, rounds=4)

    found = store.media.batch_get(PROVIDER, [*ids, *ids[:5]])  # duplicates are tolerated

    assert set(found) == set(ids[:230])
    assert all(record.status is MediaStatus.PENDING for record in found.values())
    assert max(injector.request_sizes) == 100  # never more than DynamoDB's 100 keys per call
    assert injector.request_sizes[:3] == [100, 50, 25]  # the unprocessed half is asked again, not dropped
    assert len(slept) >= 3  # with a backoff between attempts


def test_batch_get_gives_up_after_bounded_attempts(store: StateStore, dynamodb: Any, slept: list[float]) -> None:
    seed(store, ["a", "b", "c", "d"])
    store.unprocessed_retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    injector = UnprocessedInjector(dynamodb, rounds=1000, keep_fraction=0.0)

    with pytest.raises(UnprocessedKeysError) as info:
        store.media.batch_get(PROVIDER, ["a", "b", "c", "d"])

    assert info.value.unprocessed == 4
    assert injector.calls == 3
    assert len(slept) == 2


def test_batch_get_projects_what_the_lister_needs(store: StateStore) -> None:
    assert claim(store, "x1", "w1", T0)
    record = store.media.batch_get(PROVIDER, ["x1"])["x1"]
    assert record.status is MediaStatus.IN_PROGRESS
    assert record.attempts == 1
    assert record.lease_expires_at == at(60)
    assert record.lease_owner is None
    assert record.run_id is None


# --- claim and leases ------------------------------------------------------------------------------------------


def test_concurrent_claims_have_exactly_one_winner(
    aws: MotoStack, store: StateStore, serialised_moto_writes: None
) -> None:
    workers = 8
    stores = [StateStore(aws.client("dynamodb"), TABLE) for _ in range(workers)]
    for round_number in range(5):
        media_id = f"race{round_number}"
        results = run_concurrently(workers, lambda i, m=media_id: claim(stores[i], m, f"worker-{i}", T0))
        winners = [i for i, result in enumerate(results) if result.outcome is ClaimOutcome.CLAIMED]
        assert len(winners) == 1, results
        losers = [result for result in results if not result.claimed]
        assert all(result.outcome is ClaimOutcome.LEASED_ELSEWHERE for result in losers)
        assert all(result.lease_owner == f"worker-{winners[0]}" for result in losers)
        record = store.media.get(PROVIDER, media_id)
        assert record is not None
        assert record.lease_owner == f"worker-{winners[0]}"
        assert record.attempts == 1


def test_live_lease_refuses_and_expired_lease_is_taken_over(store: StateStore) -> None:
    first = claim(store, "m1", "w1", T0)
    assert first.claimed
    assert first.record is not None
    assert first.record.attempts == 1
    assert store.media.save_checkpoint(
        PROVIDER, "m1", owner="w1", checkpoint={"upload_id": "u-1", "parts_done": 3}
    )

    refused = claim(store, "m1", "w2", at(59))
    assert refused.outcome is ClaimOutcome.LEASED_ELSEWHERE
    assert refused.lease_owner == "w1"
    assert refused.lease_expires_at == at(60)

    taken = claim(store, "m1", "w2", at(61))  # w1 crashed: its lease ran out
    assert taken.claimed
    assert taken.record is not None
    assert taken.record.lease_owner == "w2"
    assert taken.record.attempts == 2
    assert taken.record.checkpoint == {"upload_id": "u-1", "parts_done": 3}  # the successor can resume


def test_renewed_lease_keeps_the_medium(store: StateStore) -> None:
    assert claim(store, "m1", "w1", T0)
    assert store.media.save_checkpoint(
        PROVIDER, "m1", owner="w1", checkpoint={"p": 0}, lease_seconds=60, now=at(50)
    )
    assert claim(store, "m1", "w2", at(70)).outcome is ClaimOutcome.LEASED_ELSEWHERE
    assert store.media.save_checkpoint(
        PROVIDER, "m1", owner="w1", checkpoint={"p": 1}, lease_seconds=60, now=at(100)
    )
    assert claim(store, "m1", "w2", at(150)).outcome is ClaimOutcome.LEASED_ELSEWHERE
    assert claim(store, "m1", "w2", at(161)).claimed


def test_same_owner_may_reclaim_its_live_lease(store: StateStore) -> None:
    assert claim(store, "m1", "msg-1", T0)
    again = claim(store, "m1", "msg-1", at(10))
    assert again.claimed
    assert again.record is not None
    assert again.record.attempts == 2


def test_worker_that_lost_its_lease_cannot_write(store: StateStore) -> None:
    assert claim(store, "m1", "w1", T0)
    assert claim(store, "m1", "w2", at(61))

    for write in (
        lambda: complete(store, "m1", "w1", at(62)),
        lambda: store.media.fail(PROVIDER, "m1", owner="w1", error="boom", now=at(62)),
        lambda: store.media.release(PROVIDER, "m1", owner="w1", error="boom", now=at(62)),
        lambda: store.media.save_checkpoint(
            PROVIDER, "m1", owner="w1", checkpoint={"x": 1}, lease_seconds=60, now=at(62)
        ),
        lambda: store.media.save_checkpoint(PROVIDER, "m1", owner="w1", checkpoint={"x": 1}, now=at(62)),
    ):
        result = write()
        assert not result
        assert result.refusal is TransitionRefusal.LEASE_LOST
        assert result.current is not None
        assert result.current.lease_owner == "w2"

    record = store.media.get(PROVIDER, "m1")
    assert record is not None
    assert record.status is MediaStatus.IN_PROGRESS
    assert record.lease_owner == "w2"
    assert record.s3_key is None
    assert record.checkpoint is None
    assert complete(store, "m1", "w2", at(63))


def test_completed_is_terminal(store: StateStore) -> None:
    assert claim(store, "m1", "w1", T0)
    assert complete(store, "m1", "w1", at(5))

    record = store.media.get(PROVIDER, "m1")
    assert record is not None
    assert record.status is MediaStatus.COMPLETED
    assert record.checksum == CHECKSUM
    assert record.size == 1234
    assert record.duration_s == 1.5
    assert record.lease_owner is None
    assert record.lease_expires_at is None
    assert record.sync_timestamp == "2024-05-01T02:00:05.000Z"

    later = claim(store, "m1", "w2", at(10_000))
    assert later.outcome is ClaimOutcome.ALREADY_COMPLETED
    assert later.record is not None
    assert later.record.s3_key == record.s3_key
    unclaimed = store.media.fail_unclaimed(PROVIDER, "m1", owner="w2", run_id="run-2", error="x", now=at(10_000))
    assert unclaimed.refusal is TransitionRefusal.ALREADY_COMPLETED
    assert (
        store.media.reset_to_pending(PROVIDER, "m1", now=at(10_000)).refusal is TransitionRefusal.ALREADY_COMPLETED
    )
    second = complete(store, "m1", "w1", at(10_001))  # a duplicate delivery finishing late
    assert second.refusal is TransitionRefusal.ALREADY_COMPLETED
    assert store.media.fail(PROVIDER, "m1", owner="w1", error="late", now=at(10_002)).refusal is (
        TransitionRefusal.ALREADY_COMPLETED
    )
    final = store.media.get(PROVIDER, "m1")
    assert final is not None
    assert final.status is MediaStatus.COMPLETED
    assert final.last_error is None


def test_source_deleted_completes_with_a_note(store: StateStore) -> None:
    assert claim(store, "gone", "w1", T0)
    assert store.media.complete(
        PROVIDER, "gone", owner="w1", s3_key=None, size=None, checksum=None, duration_s=0.2, note="source_deleted"
    )
    record = store.media.get(PROVIDER, "gone")
    assert record is not None
    assert record.status is MediaStatus.COMPLETED
    assert record.note == "source_deleted"
    assert record.s3_key is None


def test_fail_records_a_truncated_error_and_can_be_retried(store: StateStore) -> None:
    assert claim(store, "m1", "w1", T0)
    assert store.media.save_checkpoint(PROVIDER, "m1", owner="w1", checkpoint={"upload_id": "u"})
    assert store.media.fail(PROVIDER, "m1", owner="w1", error="HTTP 503 " + "x" * 5000, now=at(5))

    record = store.media.get(PROVIDER, "m1")
    assert record is not None
    assert record.status is MediaStatus.FAILED
    assert record.last_error is not None
    assert len(record.last_error) == MAX_ERROR_CHARS
    assert record.last_error.startswith("HTTP 503")
    assert record.checkpoint is None
    assert record.lease_owner is None

    retried = claim(store, "m1", "w2", at(6))  # a later run (or a redrive) may try again
    assert retried.claimed
    assert retried.record is not None
    assert retried.record.attempts == 2


def test_release_returns_to_pending_keeping_the_checkpoint(store: StateStore) -> None:
    assert claim(store, "m1", "w1", T0)
    assert store.media.save_checkpoint(PROVIDER, "m1", owner="w1", checkpoint={"upload_id": "u", "parts_done": 2})
    assert store.media.release(PROVIDER, "m1", owner="w1", error="timeout", now=at(5))
    record = store.media.get(PROVIDER, "m1")
    assert record is not None
    assert record.status is MediaStatus.PENDING
    assert record.last_error == "timeout"
    assert record.checkpoint == {"upload_id": "u", "parts_done": 2}
    assert record.lease_owner is None
    assert claim(store, "m1", "w2", at(6)).claimed  # no need to wait for the old lease


def test_reset_to_pending(store: StateStore) -> None:
    assert store.media.reset_to_pending(PROVIDER, "nothing").refusal is TransitionRefusal.NOT_FOUND
    assert claim(store, "m1", "w1", T0)
    live = store.media.reset_to_pending(PROVIDER, "m1", now=at(30))
    assert live.refusal is TransitionRefusal.LEASED_ELSEWHERE
    assert store.media.fail(PROVIDER, "m1", owner="w1", error="boom", now=at(31))
    assert store.media.reset_to_pending(PROVIDER, "m1", now=at(32))
    record = store.media.get(PROVIDER, "m1")
    assert record is not None
    assert record.status is MediaStatus.PENDING
    assert record.sync_timestamp == "2024-05-01T02:00:32.000Z"
    # A worker that crashed: its IN_PROGRESS record is reopened once the lease has expired.
    assert claim(store, "m2", "w1", T0)
    assert store.media.reset_to_pending(PROVIDER, "m2", now=at(61))


def test_checkpoint_must_be_small_json(store: StateStore) -> None:
    assert claim(store, "m1", "w1", T0)
    with pytest.raises(ValueError, match="bytes"):
        store.media.save_checkpoint(PROVIDER, "m1", owner="w1", checkpoint={"etags": ["x" * 40] * 10_000})
    parts = [[n, '"' + "e" * 32 + '"', "AAAAAA==", 8 * 1024 * 1024] for n in range(1, 3001)]
    assert store.media.save_checkpoint(
        PROVIDER, "m1", owner="w1", checkpoint={"upload_id": "u" * 100, "parts": parts}
    )
    record = store.media.get(PROVIDER, "m1")
    assert record is not None
    assert record.checkpoint is not None
    assert len(record.checkpoint["parts"]) == 3000
    with pytest.raises(ValueError, match="JSON"):
        store.media.save_checkpoint(PROVIDER, "m1", owner="w1", checkpoint={"when": T0})


# --- status index ----------------------------------------------------------------------------------------------


@pytest.fixture
def query_calls(dynamodb: Any) -> Iterator[list[dict[str, Any]]]:
    """Every Query's parameters, with Limit forced to 2 so the store must follow LastEvaluatedKey."""
    calls: list[dict[str, Any]] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 2
        calls.append(dict(params))

    dynamodb.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    return calls


def populate_statuses(store: StateStore) -> None:
    for i in range(5):
        assert seed_pending(store, PROVIDER, f"p{i}", run_id="run-1", now=at(i))
    for i in range(3):
        assert claim(store, f"c{i}", "w", at(i))
        assert complete(store, f"c{i}", "w", at(10 + i))
    assert claim(store, "f0", "w", T0)
    assert store.media.fail(PROVIDER, "f0", owner="w", error="gone wrong", now=at(20))
    assert claim(store, "i0", "w", T0)
    assert seed_pending(store, "other-provider", "p0", run_id="run-9", now=T0)
    assert store.runs.create("run-1", correlation_id="corr-1", started_at=T0, provider=PROVIDER)
    store.cursors.put(PROVIDER, {"page": 3})


def test_count_by_status_uses_the_index_and_follows_pages(
    store: StateStore, query_calls: list[dict[str, Any]]
) -> None:
    populate_statuses(store)

    counts = store.media.count_by_status()

    assert counts == {
        MediaStatus.PENDING: 6,
        MediaStatus.IN_PROGRESS: 1,
        MediaStatus.COMPLETED: 3,
        MediaStatus.FAILED: 1,
    }  # runs and cursors have no status: never counted
    assert all(call["IndexName"] == resources.STATUS_INDEX_NAME for call in query_calls)
    assert all(call["Select"] == "COUNT" for call in query_calls)
    assert len(query_calls) > len(MediaStatus)  # PENDING needed several pages
    assert store.media.count_by_status(provider="other-provider")[MediaStatus.PENDING] == 1
    assert store.media.count_by_status(run_id="run-9") == {
        MediaStatus.PENDING: 1,
        MediaStatus.IN_PROGRESS: 0,
        MediaStatus.COMPLETED: 0,
        MediaStatus.FAILED: 0,
    }


def test_list_by_status(store: StateStore, query_calls: list[dict[str, Any]]) -> None:
    populate_statuses(store)

    failed = store.media.list_by_status(MediaStatus.FAILED)
    assert [(r.media_id, r.last_error) for r in failed] == [("f0", "gone wrong")]
    pending = store.media.list_by_status(MediaStatus.PENDING, limit=4, provider=PROVIDER)
    assert [r.media_id for r in pending] == ["p0", "p1", "p2", "p3"]  # oldest first, across pages
    newest = store.media.list_by_status(MediaStatus.COMPLETED, limit=2, oldest_first=False)
    assert [r.media_id for r in newest] == ["c2", "c1"]
    assert store.media.list_by_status(MediaStatus.PENDING, limit=10, provider="other-provider")[0].provider == (
        "other-provider"
    )
