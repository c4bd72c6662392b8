"""Helpers the state integration tests share: fixed times, a claim and a completion, a thread race, seeding."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.state import Checksum, StateStore
from tests.fixtures.state import seed_pending

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
PROVIDER = "gopro"
CHECKSUM = Checksum("SHA256", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def claim(store: StateStore, media_id: str, owner: str, now: datetime, lease: float = 60) -> Any:
    return store.media.claim(PROVIDER, media_id, owner=owner, run_id="run-1", lease_seconds=lease, now=now)


def complete(store: StateStore, media_id: str, owner: str, now: datetime) -> Any:
    return store.media.complete(
        PROVIDER,
        media_id,
        owner=owner,
        s3_key=f"gopro/2024/05/01/{media_id}/clip.mp4",
        size=1234,
        checksum=CHECKSUM,
        duration_s=1.5,
        now=now,
    )


def run_concurrently(count: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(0..count-1) in threads released together by a barrier; return results in index order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait()
            results[index] = fn(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def seed(store: StateStore, media_ids: list[str]) -> None:
    for media_id in media_ids:
        assert seed_pending(store, PROVIDER, media_id, run_id="run-1", size=10, now=T0)


def count_calls(store: StateStore) -> list[str]:
    calls: list[str] = []
    store.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls
