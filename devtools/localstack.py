"""LocalStack 4.9.2 without Docker, on a free loopback port, for the emulator tests and by hand.

Why a second emulator: moto is lenient where real AWS is not (it never checks the CRC32C of a part, never
evaluates an alarm, lacks SQS StartMessageMoveTask). LocalStack refuses what AWS refuses there, so the tests in
`tests/emulators/` run the engine and the scripts against it (the team's emulator notes, shared/emulators.md,
have the measurements).

Why a process of its own, in its own virtualenv (`make localstack-setup` builds `.venv-localstack`): LocalStack
pins packages that fight the dev tools', so its interpreter runs `localstack.runtime.main` (through `_BOOTSTRAP`)
and is talked to over HTTP only; nothing here imports it.

Everything it writes stays in one temporary folder that `stop()` deletes: FILESYSTEM_ROOT and the child's TMPDIR
point there, and so does its S3 object store, which LocalStack otherwise keeps in a hard-coded, machine-wide
`/tmp/localstack-s3-storage` (whatever the settings; shared by every instance, and left behind): `_BOOTSTRAP`
re-points that module constant before the runtime starts. It is read when the S3 provider is created, so setting
it first is enough; the version is pinned (requirements-localstack.txt), so the name cannot move under us.

By hand: `python -m devtools.localstack` starts one, prints its endpoint, and stops it on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from devtools.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO_ROOT / ".venv-localstack"
SETUP_HINT = "make localstack-setup"
# The set measured to start offline (shared/emulators.md). DynamoDB is not among them: LocalStack downloads Java
# and DynamoDB Local for it at run time, which fails offline, so DynamoDB stays on moto.
SERVICES = "s3,sqs,sns,cloudwatch,events,scheduler,cloudformation,iam,kms,logs,secretsmanager,ssm,sts"
HEALTH_PATH = "/_localstack/health"
START_TIMEOUT_S = 90.0  # 2-3 s when idle; the CI machine may be busy
STOP_TIMEOUT_S = 15.0
SQS_METRICS_INTERVAL_S = 5
_LOG_TAIL = 4000
_S3_STORE_ENV = "GOPRO_SYNC_LOCALSTACK_S3_STORE"
_BOOTSTRAP = f"""
import os, runpy
import localstack.services.s3.provider as s3_provider
s3_provider.DEFAULT_S3_TMP_DIR = os.environ["{_S3_STORE_ENV}"]
runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)
"""


class LocalStackUnavailable(RuntimeError):
    """The LocalStack virtualenv is missing, or LocalStack did not become healthy."""


def python_of(venv: Path) -> Path:
    """The interpreter of `venv`; LocalStackUnavailable (naming the make target) if it has no LocalStack."""
    python = venv / "bin" / "python"
    if not python.exists() or not any((venv / "lib").glob("python*/site-packages/localstack")):
        raise LocalStackUnavailable(
            f"LocalStack is not installed in {venv}: run `{SETUP_HINT}` (it builds that virtualenv from "
            "requirements-localstack.txt)"
        )
    return python


def child_environment(port: int, root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment LocalStack needs to run outside Docker, confined to `root` and 127.0.0.1:`port`."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("AWS_")}
    tmp = root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        # Without it LocalStack believes it is in its container and writes under /var/lib and /usr/lib.
        OVERRIDE_IN_DOCKER="0",
        FILESYSTEM_ROOT=str(root / "filesystem"),
        TMPDIR=str(tmp),
        **{_S3_STORE_ENV: str(root / "s3-storage")},
        SKIP_SSL_CERT_DOWNLOAD="1",  # offline: it would fetch a certificate at start
        DISABLE_EVENTS="1",  # no analytics calls home
        DNS_ADDRESS="0",  # no DNS server (it would want port 53)
        SERVICES=SERVICES,
        LOCALSTACK_HOST=f"127.0.0.1:{port}",  # the host it writes into queue URLs
        # SQS's metrics reach CloudWatch every 60 s by default (as in AWS); 5 s lets a test watch a 60 s alarm
        # on a queue's depth change state in about one period instead of two.
        SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL=str(SQS_METRICS_INTERVAL_S),
    )
    return env


@dataclass
class LocalStackServer:
    """One running LocalStack: its endpoint, its process and the folder it writes into."""

    endpoint_url: str
    process: subprocess.Popen[bytes]
    root: Path

    @property
    def log_path(self) -> Path:
        return self.root / "localstack.log"

    def healthy(self) -> bool:
        try:
            return requests.get(self.endpoint_url + HEALTH_PATH, timeout=2).ok
        except requests.RequestException:
            return False

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-_LOG_TAIL:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Ask LocalStack to shut down, kill its process if it does not, and delete everything it wrote."""
        try:
            if self.process.poll() is None:
                with contextlib.suppress(requests.RequestException):
                    requests.post(self.endpoint_url + HEALTH_PATH, json={"action": "kill"}, timeout=5)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    # Its own process group (start_new_session): the kill reaches any helper it started too.
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=STOP_TIMEOUT_S)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start(venv: Path = DEFAULT_VENV, *, timeout: float = START_TIMEOUT_S) -> LocalStackServer:
    """Starts LocalStack on a free port of 127.0.0.1 and returns once its health endpoint answers."""
    python = python_of(venv)
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="localstack-"))
    log = (root / "localstack.log").open("wb")
    try:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and code, no shell
            [str(python), "-c", _BOOTSTRAP],
            env=child_environment(port, root),
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        log.close()
    server = LocalStackServer(endpoint_url=f"http://127.0.0.1:{port}", process=process, root=root)
    deadline = time.monotonic() + timeout
    while not server.healthy():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            why = f"exited with {process.returncode}" if process.returncode is not None else "is not healthy"
            raise LocalStackUnavailable(f"LocalStack {why} after {timeout:.0f}s; its log ends with:\n{tail}")
        time.sleep(0.2)
    return server


@contextlib.contextmanager
def running(venv: Path = DEFAULT_VENV) -> Iterator[LocalStackServer]:
    server = start(venv)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.localstack", description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="LocalStack's virtualenv")
    args = parser.parse_args(argv)
    try:
        with running(args.venv) as server:
            print(f"LocalStack at {server.endpoint_url} (files in {server.root}); Ctrl-C stops it", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                server.process.wait()
    except LocalStackUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
