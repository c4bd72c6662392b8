"""The long randomised set (`make chaos`): seeded nights of random faults over random small libraries.

Each night draws two to four fault kinds from `random_faults.CATALOGUE` and checks the invariants. When a kill
landed on a message's last receive, the video is legitimately stranded (IN_PROGRESS, its message in the DLQ) until
its lease expires; the next full reconcile must then archive it, so such a night is followed by one more night
and the invariants are checked after it (the report's *nights* column shows it). So is a night whose throttled
writes left a medium PENDING for a later night (issue 12: it waits in the table, and the next night queues it).
"""

from __future__ import annotations

import random

import pytest

from pipeline.state import MediaStatus
from tests.chaos import random_faults
from tests.chaos.report import ReliabilityReport

pytestmark = [pytest.mark.integration, pytest.mark.chaos_long]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "night_number" in metafunc.fixturenames:
        runs = int(metafunc.config.getoption("chaos_runs", default=30) or 30)
        metafunc.parametrize("night_number", range(1, runs + 1))


def test_a_randomised_night(
    chaos, chaos_seed: int, night_number: int, reliability_report: ReliabilityReport
) -> None:
    rng = random.Random(f"{chaos_seed}:night:{night_number}")
    kinds = random_faults.draw(rng)
    config = random_faults.random_library(rng, tag=f"r{night_number % 10}")
    ids = random_faults.ids_of(config)
    single = any(kind.single_consumer for kind in kinds)
    families = " + ".join(sorted(kind.family for kind in kinds))
    run = chaos(
        config,
        name=f"random night {night_number}: {families}",
        family="random",
        consumers=1 if single else 5,
        overrides={"http_read_timeout": 2},
    )
    run.proof = True  # recorded below, once per family, instead of once under its own name
    hooks = [hook for kind in kinds if (hook := kind.arm(run, rng, ids)) is not None]

    def after_listing(pipeline: object) -> None:
        for hook in hooks:
            hook(pipeline)

    run.night(after_listing=after_listing)
    outcome = run.check()
    if not outcome.ok and (run.kills.kills or _waiting(run)):
        run.aws.clear()
        run.kills.disarm()
        run.sim.faults.clear()
        run.next_night(full=True)
        outcome = run.check()
    for kind in kinds:
        reliability_report.add(f"random, with {kind.family}", "random", outcome, len(run.nights), in_total=False)
    reliability_report.add("random nights (all)", "random", outcome, len(run.nights))
    assert outcome.ok, f"{run.name}:\n  " + "\n  ".join(outcome.violations)


def _waiting(run: object) -> bool:
    """Whether a medium waits PENDING, without a live message, for a later night."""
    state = run.app.state  # type: ignore[attr-defined]
    now = state.clock()
    return any(
        record.queued_until is None or record.queued_until <= now
        for record in state.media.list_by_status(MediaStatus.PENDING, 1000)
    )
