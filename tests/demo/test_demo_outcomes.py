"""The demo's exit code and last screen when not everything was archived, and a Ctrl-C: the command as a person
runs it (a subprocess), against a simulator this test controls (`--api-url`)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.gopro_simulator import MB, GoProSimulator
from devtools.local_runtime.demo import demo_library
from pipeline.providers.gopro.config import GoProEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKEN_ID = "5f0c1a2b3c4d5e6f70819201"


@pytest.fixture
def sim() -> Iterator[GoProSimulator]:
    simulator = GoProSimulator(demo_library(4, 2 * MB)).start()
    try:
        yield simulator
    finally:
        simulator.stop()


def _env(sim: GoProSimulator) -> dict[str, str]:
    creds = sim.credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOPRO_", "SYNC_"))}
    env.update(
        {
            GoProEnv.CLIENT_ID: creds.client_id,
            GoProEnv.CLIENT_SECRET: creds.client_secret,
            GoProEnv.REFRESH_TOKEN: creds.refresh_token,
        }
    )
    return env


def _demo(sim: GoProSimulator, tmp_path: Path) -> list[str]:
    """The command, its logs in the test's directory."""
    return [
        *(sys.executable, "-m", "devtools.local_runtime", "--api-url", sim.base_url),
        *("--log-file", str(tmp_path / "demo.log")),
    ]


def test_a_video_that_never_downloads_is_named_and_the_exit_code_is_1(sim: GoProSimulator, tmp_path: Path) -> None:
    sim.faults.cut_connection(after_bytes=64 * 1024, count=None, media_id=BROKEN_ID)
    done = subprocess.run(
        _demo(sim, tmp_path),
        cwd=REPO_ROOT,
        env=_env(sim),
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "NOT OK after" in out
    assert ": 1 of 4 queued videos were not archived" in out
    assert "  queued     4 = 3 archived + 0 deleted at the source + 1 failed + 0 unfinished" in out
    assert re.search(rf"^  failed     GX\d+\.MP4 \({BROKEN_ID}\): \w+", out, re.MULTILINE), out
    assert "  DLQ        1 message(s) in the dead-letter queue" in out
    assert "Traceback" not in out + done.stderr


def test_ctrl_c_stops_with_one_line_and_exit_130(sim: GoProSimulator, tmp_path: Path) -> None:
    # Slow downloads, so the interrupt lands while the downloaders are busy.
    sim.faults.slow_first_byte(delay=2.0, count=None)
    demo = subprocess.Popen(
        _demo(sim, tmp_path),
        cwd=REPO_ROOT,
        env=_env(sim),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line or line.startswith("listed "):
                break
        time.sleep(1.0)
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 130, out + err
    assert err == "interrupted: the run was stopped (an embedded local stack keeps nothing)\n"
