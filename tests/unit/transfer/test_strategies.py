"""The resolver picks the strategy from what the probe said; "Range ignored" falls through to the stream."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.transfer.model import TransferConfig, TransferMode
from pipeline.transfer.plan import MIB
from pipeline.transfer.strategies import BoundedExecutor, resolve


def job(size: int | None, ranges: bool | None) -> Any:
    return SimpleNamespace(size=size, ranges=ranges, cfg=TransferConfig(multipart_threshold=16 * MIB))


@pytest.mark.parametrize(
    ("size", "ranges", "resuming", "modes"),
    [
        (1 * MIB, True, False, ["single", "ranged", "sequential"]),
        (1 * MIB, True, True, ["ranged", "sequential"]),  # a checkpoint is always a multipart upload
        (64 * MIB, None, False, ["ranged", "sequential"]),
        (64 * MIB, False, False, ["sequential"]),
        (None, True, False, ["sequential"]),
    ],
)
def test_the_resolver_offers_the_compatible_strategies_best_first(
    size: int | None, ranges: bool | None, resuming: bool, modes: list[str]
) -> None:
    assert [s.mode for s in resolve(job(size, ranges), resuming=resuming)] == [TransferMode(m) for m in modes]


def test_the_bounded_executor_never_runs_more_than_its_limit() -> None:
    running, peak, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def task() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(0.05)
        with lock:
            running[0] -= 1

    with BoundedExecutor(3) as executor:
        for _ in range(12):
            with executor.slot() as slot:
                slot.submit(task, on_done=lambda _f: None)
    assert peak[0] <= 3
