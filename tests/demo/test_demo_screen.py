"""`make demo` as a person sees it: in a real terminal (tmux) and piped.

Run with the .venv as it is (`DEMO_SETUP=`): the set-up is measured on a fresh clone, and a test must never
install into a shared .venv. The log file goes to the test's own directory.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
FINISHED = "DEMO-EXIT="
BAR = re.compile(r"\[#{20}\] 13/13 videos +[\d.]+ MB +[\d.]+ MB/s +done in \d+:\d\d")
JSON_LINE = re.compile(r'^\s*\{"', re.MULTILINE)


def _make_demo(log_file: Path) -> list[str]:
    return ["make", "--no-print-directory", "demo", "DEMO_SETUP=", f"DEMO_ARGS=--log-file {log_file}"]


def _assert_report(screen: str) -> None:
    assert re.search(r"^OK in \d+:\d\d: every queued video was archived$", screen, re.MULTILINE), screen
    assert "queued     13 = 12 archived + 1 deleted at the source + 0 failed + 0 unfinished" in screen, screen
    # 12 videos (a BurstVideo among them); retried: the flaky one, and the deleted one's first 404 (not proof).
    assert "archived   12 videos, 55.3 MB; 2 deliveries retried" in screen, screen
    assert JSON_LINE.search(screen) is None, f"JSON log lines on the screen:\n{screen}"
    assert "Traceback" not in screen, screen


def test_in_a_terminal_a_bar_no_logs_and_the_report(tmux_binary: str, tmp_path: Path) -> None:
    socket = f"demo-test-{uuid.uuid4().hex[:8]}"
    tmux = [tmux_binary, "-L", socket]
    log_file = tmp_path / "demo.log"
    shell = f"cd {shlex.quote(str(REPO_ROOT))} && {shlex.join(_make_demo(log_file))}; echo {FINISHED}$?; sleep 600"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    subprocess.run([*tmux, "new-session", "-d", "-s", "demo", "-x", "110", "-y", "45", shell], check=True, env=env)
    screens: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", "demo"], capture_output=True, text=True, check=True
            ).stdout
            screens.append(screen)
            if FINISHED in screen:
                break
            time.sleep(0.5)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
    screen = screens[-1]
    assert FINISHED in screen, f"make demo did not finish in time:\n{screen}"
    assert f"{FINISHED}0" in screen, screen
    assert BAR.search(screen), f"no finished progress bar on the screen:\n{screen}"
    assert not any(line.startswith("progress:") for line in screen.splitlines()), "plain lines on a terminal"
    assert f"logs: {log_file} (-v shows them here)" in screen
    _assert_report(screen)
    assert JSON_LINE.search(log_file.read_text()), "the logs did not go to the file the demo names"


def test_piped_plain_lines_and_the_last_progress_line(tmp_path: Path) -> None:
    log_file = tmp_path / "demo.log"
    done = subprocess.run(
        _make_demo(log_file), cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "\r" not in out
    progress = [line for line in out.splitlines() if line.startswith("progress")]
    assert progress, out
    assert re.fullmatch(r"progress \(final\): 13/13 videos, 55\.3 MB, [\d.]+ MB/s, done in \d+:\d\d", progress[-1])
    _assert_report(out)
    assert JSON_LINE.search(done.stderr) is None, done.stderr
