"""The version: one definition (pyproject.toml), read through metadata when installed, parsed otherwise."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from pipeline import version as version_module

REPO = Path(__file__).resolve().parents[2]
PYPROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    version_module.version.cache_clear()
    yield
    version_module.version.cache_clear()


def test_a_checkout_without_metadata_reads_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version_module.metadata, "version", missing)
    assert version_module.version() == PYPROJECT_VERSION
    assert version_module.version_line() == f"gopro-s3-sync {PYPROJECT_VERSION}"


def test_an_installed_distribution_is_asked_first(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(version_module.metadata, "version", lambda name: asked.append(name) or "9.8.7")
    assert version_module.version() == "9.8.7"
    assert version_module.version() == "9.8.7"
    assert asked == ["gopro-s3-sync"]  # read once per process


def test_without_metadata_or_pyproject_the_version_is_unknown(monkeypatch, tmp_path: Path) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version_module.metadata, "version", missing)
    monkeypatch.setattr(version_module, "PYPROJECT", tmp_path / "pyproject.toml")
    assert version_module.version() == version_module.UNKNOWN
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    version_module.version.cache_clear()
    assert version_module.version() == version_module.UNKNOWN


SCRIPTS = sorted(p.name for p in (REPO / "scripts").glob("*.py") if not p.name.startswith("_"))


def test_every_script_is_checked() -> None:
    assert {"redrive_dlq.py", "enqueue_media.py", "sync_status.py", "estimate_cost.py"} <= set(SCRIPTS)


@pytest.mark.parametrize(
    "command",
    [["-m", "pipeline"], ["-m", "devtools.local_runtime"], *[[f"scripts/{name}"] for name in SCRIPTS]],
    ids=lambda command: command[-1],
)
def test_version_flag_prints_name_and_version(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *command, "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"gopro-s3-sync {PYPROJECT_VERSION}"
