"""What every script wrapper shares: runnable as a file from the repository root, one line on a bad argument."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = (
    "enqueue_media",
    "redrive_dlq",
    "sync_status",
    "bootstrap_credentials",
    "estimate_cost",
    "audit_archive",
)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_runs_as_a_file_from_the_repository_root(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOPRO_"))}
    done = subprocess.run(
        [sys.executable, f"scripts/{name}.py", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"python scripts/{name}.py" in done.stdout
    assert "docs/operations.md" in done.stdout


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("enqueue_media", []),
        ("redrive_dlq", ["--max", "0"]),
        ("sync_status", ["--env", "qa"]),
        ("bootstrap_credentials", ["--username", "a@b.c", "--access-token-from-stdin"]),
        ("estimate_cost", ["--videos", "ten", "--avg-gb", "1", "--new-per-night", "1"]),
        ("audit_archive", ["--max-repairs", "0"]),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(name: str, argv: list[str], capsys) -> None:
    from scripts.cli.app import run_as_script

    assert run_as_script(name, argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"python scripts/{name}.py: error: ")
