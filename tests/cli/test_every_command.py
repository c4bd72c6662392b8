"""Issue 15's first acceptance point: every subcommand of `gopro-s3-sync`, run as a person runs it (a process,
`python -m scripts.cli`), answers `--help` and `--version`, and turns a bad argument and missing credentials
into exactly one line on stderr with the documented exit code, never a traceback (unless -v).

The credential cases run with no AWS credentials anywhere (environment, files, instance metadata) and an endpoint
on a closed port, so nothing can be reached even by mistake; they finish in about a second each.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.version import version_line
from scripts.cli.errors import (
    EXIT_DENIED,
    EXIT_GOPRO_CREDENTIALS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)

REPO = Path(__file__).resolve().parents[2]
TOOL = [sys.executable, "-m", "scripts.cli"]
MEDIA_ID = "5f0c1a2b3c4d5e6f70819200"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REFUSING = f"http://127.0.0.1:{closed_port()}"
NO_AWS = "no AWS credentials found"


@dataclass(frozen=True)
class Case:
    """A subcommand's bad-argument and missing-credential cases (argv after the command, expected code, text)."""

    bad: tuple[list[str], str]
    missing: tuple[list[str], int, str] | None
    missing_env: tuple[tuple[str, str], ...] = ()


CASES: dict[str, Case] = {
    "list": Case(
        (["--jsonl", "--json"], "exclusive"),
        ([], EXIT_GOPRO_CREDENTIALS, "GOPRO_REFRESH_TOKEN is set but not GOPRO_CLIENT_ID"),
        (("GOPRO_REFRESH_TOKEN", "a-refresh-token"),),
    ),
    "plan": Case(
        (["--env", "qa"], "'qa' is not one of"),
        ([], EXIT_GOPRO_CREDENTIALS, "GOPRO_REFRESH_TOKEN is set but not GOPRO_CLIENT_ID"),
        (("GOPRO_REFRESH_TOKEN", "a-refresh-token"),),
    ),
    "status": Case((["--limit", "0"], "'--limit'"), ([], EXIT_DENIED, NO_AWS)),
    "enqueue": Case(([], "Missing argument 'MEDIA_ID'"), ([MEDIA_ID, "--force"], EXIT_DENIED, NO_AWS)),
    "redrive": Case((["--max", "-3"], "'--max'"), (["--dry-run"], EXIT_DENIED, NO_AWS)),
    "audit": Case((["--max-repairs", "0"], "'--max-repairs'"), ([], EXIT_DENIED, NO_AWS)),
    "catalog": Case((["--link-hours", "999"], "'--link-hours'"), (["--json"], EXIT_DENIED, NO_AWS)),
    "restore": Case((["thaw"], "'thaw' is not one of"), (["status"], EXIT_DENIED, NO_AWS)),
    "credentials": Case(
        (["--username", "a@b.c", "--cookie-from-stdin"], "choose exactly one mode"),
        (["--refresh-token-from-stdin"], EXIT_GOPRO_CREDENTIALS, "a client id and secret are needed"),
    ),
    "cost": Case(
        (["--videos", "-3", "--avg-gb", "1", "--new-per-night", "1"], "'--videos'"),
        None,  # it reads no credentials: its case below checks it runs without any
    ),
    "backfill-sidecars": Case((["--yes=3"], "--yes"), ([], EXIT_DENIED, NO_AWS)),
    "local-stack": Case((["--video-size", "4XB"], "not a size: '4XB'"), None),  # it needs no credentials
    "demo": Case(
        (["--videos", "-3"], "'--videos'"),
        (["--api-url", REFUSING], EXIT_GOPRO_CREDENTIALS, "--api-url needs GoPro credentials"),
    ),
}
NO_DOCUMENT = {"local-stack", "demo"}  # nothing to print as one JSON document (demo: --report-json)
WHERE = set(CASES) - {"cost", "local-stack", "demo"}  # the commands that take --env and --endpoint-url


def bare_env(**extra: str) -> dict[str, str]:
    """No AWS or GoPro credentials from anywhere; nothing from a local-stack session either."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOPRO_", "SYNC_"))}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_REGION="eu-west-1",
    )
    env.update(extra)
    return env


def tool(*argv: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TOOL, *argv],
        cwd=REPO,
        env=env or bare_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert done.returncode == code, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert text in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_every_command_has_its_cases() -> None:
    from scripts.cli.app import tool as root

    assert set(CASES) == set(root.commands)


def test_the_root_help_and_version() -> None:
    shown = tool("--help")
    assert shown.returncode == EXIT_OK
    for name in CASES:
        assert name in shown.stdout
    assert "Exit codes" in shown.stdout
    assert tool("--version").stdout.strip() == version_line()


@pytest.mark.parametrize("name", CASES)
def test_help(name: str) -> None:
    done = tool(name, "--help")
    assert done.returncode == EXIT_OK, done.stderr
    assert f"Usage: gopro-s3-sync {name}" in done.stdout
    assert "docs/operations.md" in done.stdout
    for flag in ("--verbose", "--quiet", "--version"):
        assert flag in done.stdout
    assert ("--json" in done.stdout) is (name not in NO_DOCUMENT)
    if name in WHERE:
        assert "--env" in done.stdout
        assert "--endpoint-url" in done.stdout


@pytest.mark.parametrize("name", CASES)
def test_version(name: str) -> None:
    done = tool(name, "--version")
    assert done.returncode == EXIT_OK, done.stderr
    assert done.stdout.strip() == version_line()


@pytest.mark.parametrize("name", CASES)
def test_a_bad_argument_is_one_line_and_exit_2(name: str) -> None:
    argv, text = CASES[name].bad
    done = tool(name, *argv)
    assert_one_line(done, EXIT_USAGE, text)
    assert done.stdout == ""
    assert done.stderr.startswith(f"gopro-s3-sync {name}: error: ")


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.missing])
def test_missing_credentials_are_one_line_and_their_exit_code(name: str) -> None:
    case = CASES[name]
    assert case.missing is not None
    argv, code, text = case.missing
    where = ["--endpoint-url", REFUSING] if name in WHERE else []
    done = tool(name, *argv, *where, env=bare_env(**dict(case.missing_env)))
    assert_one_line(done, code, text)


def test_cost_needs_no_credentials() -> None:
    done = tool("cost", "--videos", "10", "--avg-gb", "1", "--new-per-night", "1", "--json")
    assert done.returncode == EXIT_OK, done.stderr
    assert done.stderr == ""
    assert done.stdout.lstrip().startswith("{")


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["demo", "--video-size", "4XB"], "not a size: '4XB'"),
        (["demo", "--videos", "-3"], "-3 is not in the range x>=1"),
        (["status", "--provider", "nope"], "unknown provider 'nope'"),
        (["local-stack", "--moto-port", "70000"], "'--moto-port'"),
    ],
)
def test_bad_values_of_the_issue_are_usage_errors(argv: list[str], text: str) -> None:
    assert_one_line(tool(*argv), EXIT_USAGE, text)


FAKE_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@pytest.mark.parametrize("argv", [["status"], ["redrive", "--dry-run"], ["enqueue", MEDIA_ID]])
def test_an_unreachable_aws_endpoint_is_one_line_and_exit_7(argv: list[str]) -> None:
    done = tool(*argv, "--endpoint-url", REFUSING, env=bare_env(**FAKE_AWS))
    assert_one_line(done, EXIT_UNREACHABLE, f"cannot reach the AWS endpoint {REFUSING}")


def test_an_unreachable_provider_is_one_line_and_exit_7() -> None:
    env = bare_env(GOPRO_ACCESS_TOKEN="a-token", GOPRO_API_URL=REFUSING, GOPRO_AUTH_URL=REFUSING, **FAKE_AWS)
    assert_one_line(tool("list", env=env), EXIT_UNREACHABLE, "cannot reach the provider")


def test_the_endpoint_comes_from_aws_endpoint_url_too() -> None:
    done = tool("status", env=bare_env(AWS_ENDPOINT_URL=REFUSING, **FAKE_AWS))
    assert_one_line(done, EXIT_UNREACHABLE, REFUSING)


@pytest.fixture
def silent_api() -> Iterator[tuple[str, threading.Event]]:
    """A GoPro API that accepts connections and never answers: the command waits until Ctrl-C."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    connected = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            connected.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", connected
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("verbose", [False, True])
def test_ctrl_c_is_one_line_and_exit_130(silent_api: tuple[str, threading.Event], verbose: bool) -> None:
    url, connected = silent_api
    env = bare_env(GOPRO_ACCESS_TOKEN="a-token", GOPRO_API_URL=url, GOPRO_AUTH_URL=url, **FAKE_AWS)
    argv = [*TOOL, "list", *(["-v"] if verbose else [])]
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert connected.wait(30), "the command never called the API"
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_INTERRUPTED, err
    last = err.splitlines()[-1]
    assert last == "gopro-s3-sync list: error: interrupted"
    if verbose:  # -v: the logs and the traceback, then the same last line
        assert "Traceback" in err
    else:
        assert err.count("\n") == 1, err
        assert "Traceback" not in err


def test_the_exit_code_table_of_help_is_the_documented_one() -> None:
    shown = tool("--help").stdout
    in_help = re.findall(r"^\s+(\d+)  (.+)$", shown.split("Exit codes", 1)[1], flags=re.M)
    doc = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    section = doc.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    in_doc = re.findall(r"^\| `(\d+)` \| (.+?) \|$", section, flags=re.M)
    assert in_help
    assert in_help == in_doc


def test_quiet_prints_nothing_but_asked_for_json() -> None:
    argv = ["cost", "--videos", "10", "--avg-gb", "1", "--new-per-night", "1"]
    assert tool(*argv).stdout  # the human lines, without -q
    quiet = tool(*argv, "-q")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (EXIT_OK, "", "")
    assert tool(*argv, "-q", "--json").stdout.lstrip().startswith("{")


def test_the_old_entry_point_is_the_tool() -> None:
    from pipeline.cli import translate

    assert translate(["list-media", "--json"]) == ["list", "--jsonl"]  # the old --json meant one object a line
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "list-media", "--json"],
        cwd=REPO,
        env=bare_env(GOPRO_REFRESH_TOKEN="a-refresh-token"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_one_line(done, EXIT_GOPRO_CREDENTIALS, "python -m pipeline list: error: GOPRO_REFRESH_TOKEN is set")


def test_the_environment_comes_from_sync_env_too() -> None:
    assert_one_line(tool("status", env=bare_env(SYNC_ENV="qa")), EXIT_USAGE, "'qa' is not one of")
