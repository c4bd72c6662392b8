"""Processes of a benchmark: the moto and source servers, and measured runs of one contender each.

Why every contender runs in its own process: peak RSS (the kernel's high-water mark) never goes down within a
process, and a Go binary cannot be measured from inside Python anyway. `run_measured` runs the command under GNU
`/usr/bin/time`, the same way for rclone and for Python workers. Why not this process's own `wait4`: Linux
carries a process's peak RSS across `exec`, so a child forked from this (90 MB) Python process reports at least
90 MB whatever it really used; `time` is a small process to fork from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.net import free_port, wait_for_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TRANSFER_BENCH = BENCH / "transfer_bench.py"
MIB = 1024 * 1024
REGION = "eu-west-1"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION}


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without AWS_* (a CA bundle or profile from the host must not reach the contenders)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_AWS)
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        return proc_cpu_s(self.pid)


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _server(command: list[str], port: int, env: Mapping[str, str] | None = None) -> Iterator[int]:
    process = subprocess.Popen(command, env=clean_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server(env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """A ThreadedMotoServer in its own process (`env`: extra variables, e.g. moto settings)."""
    port = free_port()
    with _server([sys.executable, str(TRANSFER_BENCH), "--serve-moto", str(port)], port, env) as pid:
        yield Server(f"http://127.0.0.1:{port}", pid)


@contextmanager
def source_server(size: int, cap_mbps: float | None) -> Iterator[Server]:
    """transfer_bench's range-capable source of `size` deterministic bytes (`url` is the object's)."""
    port = free_port()
    command = [sys.executable, str(TRANSFER_BENCH), "--serve-source", str(port), "--size", str(size)]
    command += ["--cap-mbps", str(cap_mbps or 0)]
    with _server(command, port) as pid:
        yield Server(f"http://127.0.0.1:{port}/media/object.bin", pid)


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    max_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(command: list[str], env: Mapping[str, str], timeout: float = 3600) -> Measured:
    """Run `command` to its end; CPU (user + system) and peak RSS of that process (GNU time, else wait4)."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r", suffix=".time") as timing,
    ):
        if gnu_time:
            command = [gnu_time, "-f", "%U %S %M", "-o", timing.name, *command]
        began = time.monotonic()
        process = subprocess.Popen(command, env=dict(env), stdout=out, stderr=err)
        deadline = began + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        wall = time.monotonic() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        cpu, max_rss_kib = usage.ru_utime + usage.ru_stime, usage.ru_maxrss  # KiB on Linux
        if gnu_time:
            fields = (timing.read().strip().splitlines() or [""])[-1].split()
            if len(fields) == 3:
                cpu, max_rss_kib = float(fields[0]) + float(fields[1]), int(fields[2])
        return Measured(
            wall_s=wall,
            cpu_s=cpu,
            max_rss_mib=max_rss_kib / 1024,
            returncode=process.returncode,
            stdout=out.read(),
            stderr=err.read()[-4000:],
        )
