"""tmux for the demo's screen test: installed from Debian's packages when missing (as the Makefile installs
rclone for the benchmarks); the test is skipped, loudly, only where apt-get is not there to install it."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import pytest

APT_TIMEOUT = 600


def _apt_install(package: str) -> bool:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run = {"env": env, "capture_output": True, "timeout": APT_TIMEOUT, "check": False}
    if subprocess.run(["apt-get", "install", "-y", package], **run).returncode != 0:  # type: ignore[call-overload]
        subprocess.run(["apt-get", "update"], **run)  # type: ignore[call-overload]
        subprocess.run(["apt-get", "install", "-y", package], **run)  # type: ignore[call-overload]
    return shutil.which(package) is not None


@pytest.fixture(scope="session")
def tmux_binary() -> str:
    found = shutil.which("tmux")
    if found is None and _apt_install("tmux"):
        found = shutil.which("tmux")
    if found is None:
        message = (
            "SKIPPING THE DEMO SCREEN TEST: tmux is not installed and apt-get (as root) is not available to "
            "install it; install tmux to run it"
        )
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    return found
