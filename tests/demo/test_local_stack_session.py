"""docs/operations.md, "A local stack session", run as written (issue 15's third acceptance point): the
documented `gopro-s3-sync local-stack`, then `status`, `plan`, `redrive --dry-run`, `enqueue --force`, the redrive
and `status` again, each `$` line of the documented block in a shell, each output line shown there found in what
the command printed (times, ids and ports aside), then Ctrl-C. The stack runs on free ports (`--moto-port 0
--sim-port 0`) with its env file in the test's directory, so the `source` line reads that file; every other line
is the documentation's own.

`gopro-s3-sync` is the console script `pip install -e .` (make setup) writes; the test never installs into the
shared virtualenv, so it puts the same three-line script (`from scripts.cli.app import main`) on PATH.
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
START_MARKER = "<!-- local-stack-start"
TOOL = "gopro-s3-sync"
DOC_ENV_FILE = ".cache/local-stack/env.sh"
READY = "local stack ready; Ctrl-C stops it"
STACK = [sys.executable, "-m", "scripts.cli", "local-stack"]
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


def _block(marker: str) -> str:
    text = DOC.read_text()
    assert marker in text, f"a block of docs/operations.md lost its marker {marker!r}"
    return text.split(marker, 1)[1].split("```console\n", 1)[1].split("```", 1)[0]


def documented_start() -> str:
    [command] = [line[2:] for line in _block(START_MARKER).splitlines() if line.startswith("$ ")]
    return command


def installed_tool(bin_dir: Path) -> dict[str, str]:
    """`gopro-s3-sync` on PATH as the console script of `[project.scripts]`; the environment to run it in."""
    bin_dir.mkdir()
    script = bin_dir / TOOL
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom scripts.cli.app import main\nsys.exit(main())\n")
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOPRO_", "SYNC_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def test_the_console_script_is_the_tool() -> None:
    import tomllib

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {TOOL: "scripts.cli.app:main"}


def documented_session() -> list[Step]:
    block = _block(MARKER)
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
    assert documented_start() == f"{TOOL} local-stack"
    steps = documented_session()
    commands = [step.command for step in steps]
    assert commands[0] == f"source {DOC_ENV_FILE}"
    for wanted in ("status", "plan", "enqueue", "redrive"):
        assert any(c.startswith(f"{TOOL} {wanted}") for c in commands), wanted
    assert any(c.startswith(f"{TOOL} redrive") and "--dry-run" in c for c in commands)
    assert any(c.startswith(f"{TOOL} enqueue") and "--force" in c for c in commands)
    env = installed_tool(tmp_path / "bin")
    env_file = tmp_path / "env.sh"
    stack = subprocess.Popen(
        [
            "bash",
            "-c",
            f'exec {documented_start()} "$@"',
            "bash",
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
        env=env,
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
                    ["bash", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
                )
                missing = missing_lines(step, done.stdout + done.stderr)
                if (done.returncode == 0 and not missing) or time.monotonic() >= deadline:
                    break
                time.sleep(1)
            assert done.returncode == 0, f"{step.command}\n{done.stdout}{done.stderr}"
            assert not missing, f"{step.command}: not printed: {missing}\n{done.stdout}{done.stderr}"
            assert "Traceback" not in done.stderr
            assert "error:" not in done.stderr, done.stderr
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
