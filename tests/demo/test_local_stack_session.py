"""docs/operations.md, "A local stack session", run as written: the local stack, then `status`,
`redrive --dry-run`, `enqueue --force`, the redrive and `status` again, each `$` line of the documented block in
a shell, each output line shown there found in what the command printed (times, ids and ports aside), then
Ctrl-C. The stack runs on free ports (`--moto-port 0 --sim-port 0`) with its env file in the test's directory,
so the `source` line reads that file; every other line is the documentation's own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "operations.md"
MARKER = "<!-- local-stack-session"
DOC_ENV_FILE = ".cache/local-stack/env.sh"
READY = "local stack ready; Ctrl-C stops it"
STACK = [sys.executable, "-m", "devtools.local_stack"]
NORMALISE = [
    (re.compile(r"(manual-)?\d{8}T\d{6}Z-[0-9a-f]{8}"), "<run>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"), "<time>"),
    (re.compile(r"http://127\.0\.0\.1:\d+"), "<url>"),
    # The redrive resets the record after its send; one of the stack's downloaders may claim it first (as in AWS).
    (re.compile(r"record (PENDING|leased_elsewhere)$"), "record <reset or taken>"),
]


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def documented_session() -> list[Step]:
    text = DOC.read_text()
    assert MARKER in text, "the session block of docs/operations.md lost its marker"
    block = text.split(MARKER, 1)[1].split("```console\n", 1)[1].split("```", 1)[0]
    steps: list[Step] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        elif line.strip():
            steps[-1].expected.append(line)
    return steps


def normalise(line: str) -> str:
    for pattern, placeholder in NORMALISE:
        line = pattern.sub(placeholder, line)
    return line.rstrip()


def missing_lines(step: Step, output: str) -> list[str]:
    printed = {normalise(line) for line in output.splitlines()}
    return [line for line in step.expected if normalise(line) not in printed]


def test_the_documented_session(tmp_path: Path) -> None:
    steps = documented_session()
    commands = [step.command for step in steps]
    assert commands[0] == f"source {DOC_ENV_FILE}"
    assert any("sync_status.py" in c for c in commands)
    assert any("redrive_dlq.py" in c and "--dry-run" in c for c in commands)
    assert any("enqueue_media.py" in c and "--force" in c for c in commands)
    env_file = tmp_path / "env.sh"
    stack = subprocess.Popen(
        [
            *STACK,
            "--moto-port",
            "0",
            "--sim-port",
            "0",
            "--env-file",
            str(env_file),
            "--log-file",
            str(tmp_path / "stack.log"),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOPRO_", "SYNC_"))},
    )
    try:
        printed = _read_until_ready(stack)
        exports = [line for line in printed if line.startswith("export ")]
        assert exports, printed
        assert env_file.read_text().splitlines()[1:] == exports
        assert "  queued     12 = 10 archived + 1 deleted at the source + 1 failed + 0 unfinished" in printed
        source = f"source {env_file}"
        for step in steps[1:]:
            script = f"{source} && {step.command}"
            deadline = time.monotonic() + (30 if step is steps[-1] else 0)
            while True:  # the last status waits for the stack's downloaders to take the two messages
                done = subprocess.run(
                    ["bash", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
                )
                missing = missing_lines(step, done.stdout + done.stderr)
                if (done.returncode == 0 and not missing) or time.monotonic() >= deadline:
                    break
                time.sleep(1)
            assert done.returncode == 0, f"{step.command}\n{done.stdout}{done.stderr}"
            assert not missing, f"{step.command}: not printed: {missing}\n{done.stdout}{done.stderr}"
            assert "Traceback" not in done.stderr
        stack.send_signal(signal.SIGINT)
        out, err = stack.communicate(timeout=60)
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.communicate()
    assert stack.returncode == 0, err
    assert out.rstrip().endswith("local stack stopped"), out
    assert "Traceback" not in err, err


def _read_until_ready(stack: subprocess.Popen[str], timeout: float = 120.0) -> list[str]:
    assert stack.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stack.stdout.readline()
        if not line:
            raise AssertionError(f"the stack ended before it was ready:\n{''.join(lines)}{stack.stderr.read()}")  # type: ignore[union-attr]
        lines.append(line.rstrip("\n"))
        if lines[-1] == READY:
            return lines
    raise AssertionError(f"the stack was not ready in {timeout} s:\n" + "\n".join(lines))


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*STACK, "--moto-port", str(port), "--sim-port", "0", "--env-file", str(tmp_path / "env.sh")],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"port {port} is in use" in done.stderr
