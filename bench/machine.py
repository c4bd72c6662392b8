"""What a benchmark ran on, and how busy the machine was while it ran.

Why the load average matters here: the numbers come from a shared 2-vCPU machine where other work (test runs of
other sessions) competes for the same cores as moto, the source server and the contender. Every measurement
records the 1-minute load average around it, so a slow run can be told apart from a busy machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import threading
import time
from typing import Any


def loadavg() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def rclone_version() -> str | None:
    if shutil.which("rclone") is None:
        return None
    done = subprocess.run(["rclone", "version"], capture_output=True, text=True, timeout=30, check=False)
    first = done.stdout.splitlines()[0] if done.stdout else ""
    return first.replace("rclone ", "").strip() or None


def machine_info() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_total_gib": mem_total_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "rclone": rclone_version(),
        "load_at_start": round(loadavg(), 2),
    }


class LoadSampler:
    """Samples the 1-minute load average every `interval` seconds while it runs (a context manager)."""

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(loadavg())
            self._stop.wait(self.interval)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(loadavg())

    def summary(self) -> dict[str, float]:
        values = self.samples or [loadavg()]
        return {
            "load1_min": round(min(values), 2),
            "load1_median": round(statistics.median(values), 2),
            "load1_max": round(max(values), 2),
        }


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
