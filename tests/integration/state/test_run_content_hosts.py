"""The content hosts of a run: a string set every downloader ADDs to, bounded, on moto and in memory alike; and
the recorder that feeds it from download links (once per host and run in a process, never failing a delivery)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.services.content_hosts import ContentHostRecorder
from pipeline.state import StateStore, ensure_table
from pipeline.state.runs import MAX_CONTENT_HOSTS

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield StateStore.in_memory(clock=lambda: T0)
        return
    aws = request.getfixturevalue("aws")
    client = aws.client("dynamodb")
    ensure_table(client, "content-hosts")
    yield StateStore(client, "content-hosts", sleep=lambda _s: None, clock=lambda: T0)


def _run(store: StateStore, run_id: str = "run-1") -> str:
    store.runs.create(run_id, correlation_id="c", started_at=T0, provider="gopro")
    return run_id


@pytest.mark.integration
def test_hosts_are_added_not_overwritten(store: StateStore) -> None:
    run_id = _run(store)
    assert store.runs.get(run_id).content_hosts == ()
    assert store.runs.add_content_hosts(run_id, {"b.cdn.example"})
    assert store.runs.add_content_hosts(run_id, {"a.cdn.example", "b.cdn.example"})
    store.runs.update(run_id, synced=1)  # counters and hosts live side by side
    run = store.runs.get(run_id)
    assert run.content_hosts == ("a.cdn.example", "b.cdn.example")
    assert run.synced == 1
    assert store.runs.latest(1, provider="gopro")[0].content_hosts == ("a.cdn.example", "b.cdn.example")


@pytest.mark.integration
def test_the_set_is_bounded(store: StateStore) -> None:
    run_id = _run(store)
    flood = [f"h{i:03d}.evil.example" for i in range(3 * MAX_CONTENT_HOSTS)]
    assert store.runs.add_content_hosts(run_id, flood)  # one write: at most MAX_CONTENT_HOSTS of them
    assert len(store.runs.get(run_id).content_hosts) == MAX_CONTENT_HOSTS
    assert not store.runs.add_content_hosts(run_id, {"late.cdn.example"})  # full: refused
    assert len(store.runs.get(run_id).content_hosts) == MAX_CONTENT_HOSTS


@pytest.mark.integration
def test_a_missing_run_gets_no_record(store: StateStore) -> None:
    assert not store.runs.add_content_hosts("no-such-run", {"a.cdn.example"})
    assert store.runs.get("no-such-run") is None


class _CountingRuns:
    def __init__(self, runs: Any, fail: bool = False) -> None:
        self._runs = runs
        self.calls: list[set[str]] = []
        self.fail = fail

    def add_content_hosts(self, run_id: str, hosts: Any) -> bool:
        self.calls.append(set(hosts))
        if self.fail:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
        return self._runs.add_content_hosts(run_id, hosts)


def test_the_recorder_writes_each_host_of_a_run_once() -> None:
    store = StateStore.in_memory(clock=lambda: T0)
    run_id = _run(store)
    runs = _CountingRuns(store.runs)
    recorder = ContentHostRecorder(runs)
    recorder.record(run_id, ["https://A.cdn.example./x.mp4?X-Amz-Signature=secret", None])
    recorder.record(run_id, ["https://a.cdn.example/y.mp4", "https://b.cdn.example/y.mp4"])
    recorder.record(run_id, ["https://b.cdn.example/z.mp4", "not a url", "https://m\u0435dia.example/x"])
    assert runs.calls == [{"a.cdn.example"}, {"b.cdn.example"}]
    assert store.runs.get(run_id).content_hosts == ("a.cdn.example", "b.cdn.example")


def test_a_failed_write_is_logged_and_tried_again_later(caplog: pytest.LogCaptureFixture) -> None:
    store = StateStore.in_memory(clock=lambda: T0)
    run_id = _run(store)
    runs = _CountingRuns(store.runs, fail=True)
    recorder = ContentHostRecorder(runs)
    with caplog.at_level(logging.WARNING):
        recorder.record(run_id, ["https://a.cdn.example/x"])  # does not raise
    assert "could not record the content hosts" in caplog.text
    runs.fail = False
    recorder.record(run_id, ["https://a.cdn.example/x"])
    assert store.runs.get(run_id).content_hosts == ("a.cdn.example",)


def test_no_failure_of_the_record_fails_the_delivery(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def add_content_hosts(self, run_id: str, hosts: Any) -> bool:
            raise AttributeError("a defect")

    with caplog.at_level(logging.ERROR):
        ContentHostRecorder(Broken()).record("run-1", ["https://a.cdn.example/x"])  # does not raise
    assert "recording the content hosts of run run-1 failed" in caplog.text
