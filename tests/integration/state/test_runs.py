"""Run records against a real moto server: atomic counters, the latest-run pointer, the lister's last write and the
exactly-once report claim."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline import resources
from pipeline.state import StateStore
from tests.fixtures.aws import MotoStack
from tests.integration.state.conftest import TABLE
from tests.integration.state.support import PROVIDER, T0, at, count_calls, run_concurrently, seed

pytestmark = pytest.mark.integration


# --- run records -----------------------------------------------------------------------------------------------


def test_run_record_counters_are_atomic(aws: MotoStack, store: StateStore, serialised_moto_writes: None) -> None:
    assert store.runs.create("run-1", correlation_id="corr-1", started_at=T0, provider=PROVIDER)
    assert not store.runs.create("run-1", correlation_id="corr-2", started_at=at(5), provider=PROVIDER)
    stores = [StateStore(aws.client("dynamodb"), TABLE) for _ in range(6)]

    def add(index: int) -> None:
        for _ in range(5):
            assert stores[index].runs.update("run-1", synced=1, bytes_transferred=1000, transfer_seconds=0.5)

    run_concurrently(6, add)
    assert store.runs.update("run-1", listed=40, enqueued=30, skipped=10, listing_done=True, now=at(9))
    assert store.runs.update("run-1", enqueued=2, lister_error="token refresh failed: 401")

    run = store.runs.get("run-1")
    assert run is not None
    assert run.correlation_id == "corr-1"
    assert run.started_at == "2024-05-01T02:00:00.000Z"
    assert (run.listed, run.enqueued, run.skipped) == (40, 32, 10)
    assert (run.synced, run.bytes_transferred, run.transfer_seconds) == (30, 30_000, 15.0)
    assert run.listing_done
    assert run.listing_done_at == "2024-05-01T02:00:09.000Z"
    assert run.lister_error == "token refresh failed: 401"
    assert not store.runs.update("no-such-run", synced=1)
    assert store.runs.get("no-such-run") is None


def test_latest_runs(store: StateStore) -> None:
    for day in (3, 1, 2):
        started = datetime(2024, 5, day, 2, 0, tzinfo=UTC)
        assert store.runs.create(f"run-{day}", correlation_id=f"c{day}", started_at=started, provider=PROVIDER)
    assert store.runs.create("run-x", correlation_id="cx", started_at=at(0), provider="other")
    seed(store, ["m1", "m2"])

    assert [run.run_id for run in store.runs.latest(2)] == ["run-3", "run-2"]
    assert [run.run_id for run in store.runs.latest(10, provider=PROVIDER)] == ["run-3", "run-2", "run-1"]


def test_claim_report_exactly_once(aws: MotoStack, store: StateStore, serialised_moto_writes: None) -> None:
    assert not store.runs.claim_report("unknown-run")
    assert store.runs.create("run-1", correlation_id="c", started_at=T0, provider=PROVIDER)
    stores = [StateStore(aws.client("dynamodb"), TABLE) for _ in range(6)]

    results = run_concurrently(6, lambda i: stores[i].runs.claim_report("run-1", now=at(100)))

    assert results.count(True) == 1
    assert not store.runs.claim_report("run-1", now=at(200))
    store.runs.mark_report_sent("run-1", now=at(101))
    assert not store.runs.claim_report("run-1", now=at(100_000))  # sent: never again, however late
    run = store.runs.get("run-1")
    assert run is not None
    assert run.report_sent_at == "2024-05-01T02:01:41.000Z"


def test_stale_report_claim_is_taken_over(store: StateStore) -> None:
    assert store.runs.create("run-1", correlation_id="c", started_at=T0, provider=PROVIDER)
    assert store.runs.claim_report("run-1", now=T0)  # this summary died before publishing
    assert not store.runs.claim_report("run-1", now=at(60), stale_after_seconds=900)
    assert store.runs.claim_report("run-1", now=at(901), stale_after_seconds=900)


# --- latest-run pointer and the lister's last write ----------------------------------------------------------


def test_latest_run_of_a_provider_is_read_through_the_pointer_without_a_scan(store: StateStore) -> None:
    for day in (3, 1, 2):  # created out of order: the pointer follows started_at, not creation order
        started = datetime(2024, 5, day, 2, 0, tzinfo=UTC)
        assert store.runs.create(f"run-{day}", correlation_id=f"c{day}", started_at=started, provider=PROVIDER)
    assert store.runs.create("run-x", correlation_id="cx", started_at=at(10**7), provider="other")
    calls = count_calls(store)

    (latest,) = store.runs.latest(1, provider=PROVIDER)

    assert latest.run_id == "run-3"
    assert calls == ["GetItem", "GetItem"]
    assert [run.run_id for run in store.runs.latest(10, provider=PROVIDER)] == ["run-3", "run-2", "run-1"]
    assert "Scan" in calls  # several runs: still the scan, which never mistakes the pointer for a run


def test_latest_run_falls_back_to_the_scan_when_the_pointer_is_missing_or_stale(store: StateStore) -> None:
    assert store.runs.create("run-1", correlation_id="c", started_at=T0, provider=PROVIDER)
    pointer = {resources.TABLE_PARTITION_KEY: {"S": f"latest-run#{PROVIDER}"}}
    store.client.delete_item(TableName=TABLE, Key=pointer)  # a table from before the pointer existed
    assert [run.run_id for run in store.runs.latest(1, provider=PROVIDER)] == ["run-1"]
    store.client.put_item(TableName=TABLE, Item={**pointer, "run_id": {"S": "gone"}})
    assert [run.run_id for run in store.runs.latest(1, provider=PROVIDER)] == ["run-1"]


def test_finish_listing_adds_marks_done_and_answers_with_the_record(store: StateStore) -> None:
    assert store.runs.finish_listing("no-such-run", listed=1) is None
    assert store.runs.create("run-1", correlation_id="c", started_at=T0, provider=PROVIDER)
    assert store.runs.update("run-1", listed=100, enqueued=3)
    calls = count_calls(store)

    run = store.runs.finish_listing("run-1", listed=20, enqueued=2, skipped=1, now=at(9))

    assert calls == ["UpdateItem"]
    assert run is not None
    assert (run.listed, run.enqueued, run.skipped, run.listing_done) == (120, 5, 1, True)
    assert run.listing_done_at == "2024-05-01T02:00:09.000Z"
