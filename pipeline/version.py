"""The project's version, defined in one place: `pyproject.toml`'s `[project] version`.

Why two sources: an installed distribution knows its version through `importlib.metadata`, but this project runs
from a checkout (and as a Lambda package) without being pip-installed, so without metadata the version is parsed
from the `pyproject.toml` beside the package. Both are read at most once per process.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "gopro-s3-sync"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
#: What a copy without metadata and without pyproject.toml (a Lambda package) reports.
UNKNOWN = "0+unknown"


@cache
def version() -> str:
    """The installed distribution's version, else the checkout's pyproject.toml version, else `UNKNOWN`."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _pyproject_version(PYPROJECT)


def version_line() -> str:
    """What `--version` prints: `gopro-s3-sync <version>`."""
    return f"{DISTRIBUTION} {version()}"


def _pyproject_version(path: Path) -> str:
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return UNKNOWN
    value = project.get("version")
    return value if isinstance(value, str) and value else UNKNOWN
