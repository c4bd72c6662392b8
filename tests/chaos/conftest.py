"""Options, markers and fixtures of the chaos suite.

- `--chaos-long` runs the long randomised set (tests marked `chaos_long`); without it they are skipped, so
  `make test` runs the quick set only. `--chaos-seed=N` seeds every random choice (default 1), `--chaos-runs=N`
  sets how many randomised nights the long set plays, `--chaos-report=PATH` writes the reliability table there.
- `chaos(config, name=..., family=..., **kwargs)` starts a `ChaosRun` (see `harness`); after the test each run
  is checked against the invariants (unless the test did so itself) and its outcome goes into the report.
- Every chaos test runs with the pipeline's log formatter capturing every line; at the end the lines and
  whatever reached stdout/stderr are scanned for the simulator's secrets.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.gopro_simulator import SimulatorConfig
from tests.chaos.harness import ChaosRun
from tests.chaos.report import ReliabilityReport
from tests.chaos.secrets import CapturedLogs, LineCapture, leaks

_REPORT = pytest.StashKey[ReliabilityReport]()
# Pass/fail counts of this session's chaos tests, for the report's header (the logreport hook gets no config).
_COUNTS: dict[str, float] = {"passed": 0, "failed": 0, "xfailed": 0, "started": 0.0}
_KNOWN_BUGS: dict[str, str] = {}  # test name -> its xfail reason


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "chaos suite (tests/chaos)")
    group.addoption("--chaos-long", action="store_true", default=False, help="also run the long randomised set")
    group.addoption("--chaos-seed", type=int, default=1, help="seed of every random choice (default 1)")
    group.addoption("--chaos-runs", type=int, default=30, help="randomised nights in the long set (default 30)")
    group.addoption("--chaos-report", default=None, help="write the reliability table (markdown) to this path")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos_long: long randomised chaos set, skipped unless --chaos-long")
    long = bool(config.getoption("chaos_long", default=False))
    config.stash[_REPORT] = ReliabilityReport(
        seed=int(config.getoption("chaos_seed", default=1) or 1),
        long=long,
        random_nights=int(config.getoption("chaos_runs", default=30) or 30) if long else 0,
    )
    _COUNTS.update(passed=0, failed=0, xfailed=0, started=time.monotonic())
    _KNOWN_BUGS.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/chaos/" not in report.nodeid.replace("\\", "/"):
        return
    if report.when == "call" and report.passed:
        _COUNTS["passed"] += 1
    elif report.failed:
        _COUNTS["failed"] += 1
    elif report.skipped and hasattr(report, "wasxfail"):
        _COUNTS["xfailed"] += 1
        _KNOWN_BUGS.setdefault(report.nodeid.split("[")[0].split("::")[-1], str(report.wasxfail))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = session.config.getoption("chaos_report", default=None)
    report = session.config.stash.get(_REPORT, None)
    if not target or report is None:
        return
    report.known_bugs.update(_KNOWN_BUGS)
    report.write(
        Path(target),
        passed=int(_COUNTS["passed"]),
        failed=int(_COUNTS["failed"]),
        xfailed=int(_COUNTS["xfailed"]),
        seconds=time.monotonic() - _COUNTS["started"],
    )


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _long_set_gate(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("chaos_long") and not request.config.getoption("chaos_long", default=False):
        pytest.skip("long randomised chaos set: run with --chaos-long (make chaos)")


@pytest.fixture(autouse=True)
def _moto_writes_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies the writes to one item one after the other; moto checks a condition and then mutates the
    item without a lock, so two racing claims can both pass its check. Racing downloaders must meet the real
    serialisation, or the suite would report moto's race as a duplicated upload (the moto server runs in this
    process, so locking its backend's writes is enough)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("update_item", "put_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def serialised(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialised)


@pytest.fixture
def chaos_seed(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("chaos_seed", default=1) or 1)


@pytest.fixture
def chaos_rng(chaos_seed: int, request: pytest.FixtureRequest) -> random.Random:
    """A random source seeded by --chaos-seed and the test's id: reproducible, different per test."""
    return random.Random(f"{chaos_seed}:{request.node.nodeid}")


@pytest.fixture
def reliability_report(request: pytest.FixtureRequest) -> ReliabilityReport:
    return request.config.stash[_REPORT]


@pytest.fixture
def secret_sources() -> list[Callable[[], set[str]]]:
    """Callables giving the secrets a test used (read at the end: tokens are issued during the test)."""
    return []


@pytest.fixture(autouse=True)
def captured_logs(
    secret_sources: list[Callable[[], set[str]]], capsys: pytest.CaptureFixture[str]
) -> Iterator[LineCapture]:
    with CapturedLogs() as capture:
        yield capture
    out, err = capsys.readouterr()
    secrets: set[str] = set()
    for source in secret_sources:
        secrets |= source()
    found = leaks([*capture.lines, out, err], secrets)
    assert not found, f"{len(found)} log line(s) carry a secret:\n" + "\n".join(found[:5])


@pytest.fixture
def chaos(
    aws: Any,
    gopro_sim: Any,
    monkeypatch: pytest.MonkeyPatch,
    secret_sources: list[Callable[[], set[str]]],
    reliability_report: ReliabilityReport,
) -> Iterator[Callable[..., ChaosRun]]:
    runs: list[tuple[ChaosRun, str]] = []

    def start(config: SimulatorConfig, *, name: str, family: str, **kwargs: Any) -> ChaosRun:
        sim = gopro_sim(config)
        run = ChaosRun(name=name, aws_endpoint_url=aws.endpoint_url, sim=sim, patch=monkeypatch.setattr, **kwargs)
        secret_sources.append(run.secrets)
        runs.append((run, family))
        return run

    yield start
    errors = []
    for run, family in runs:
        try:
            if not run.proof:
                outcome = run.outcome or run.check()
                reliability_report.add(run.name, family, outcome, len(run.nights))
                if not outcome.ok:
                    errors.append(f"{run.name}:\n  " + "\n  ".join(outcome.violations))
        finally:
            run.stop()
    assert not errors, "invariants violated after the scenario:\n" + "\n".join(errors)
