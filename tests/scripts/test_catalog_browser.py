"""The catalog page in a real headless browser (Chromium from Debian's packages): it loads, shows the media of a
small archive grouped by month, and a filter narrows it. A screenshot is kept in the test's tmp dir.

Skipped when no Chromium is installed (`apt-get install -y chromium` as root)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import _catalog as catalog
from tests.scripts.archive_seed import seed_archive

# Debian's package (make test installs it), else the Chrome GitHub's runners ship.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install -y chromium)")
ROW = re.compile(r'<tr class="medium" data-media-id="([^"]+)"')


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def page(stack, run_script, tmp_path: Path) -> Path:
    stack.provision(queues=False)
    seed_archive(stack.client("s3"), stack.state)
    path = tmp_path / "catalog.html"
    result = run_script(catalog, stack.args("--html", str(path)))
    assert result.code == 0, result.err
    return path


def rows(tmp_path: Path, url: str) -> list[str]:
    done = chromium(tmp_path / "profile", "--dump-dom", url)
    assert done.returncode == 0, done.stderr[-2000:]
    return ROW.findall(done.stdout)


def test_the_page_loads_and_shows_every_medium(page: Path, tmp_path: Path) -> None:
    shown = rows(tmp_path, page.as_uri())
    assert sorted(shown) == ["aa01", "aa02", "aa03", "aa04"]
    dom = chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    assert "4 of 4 media" in dom
    assert "2025-07 (2)" in dom  # grouped by year and month
    assert "GX010002.MP4, GX020002.MP4" in dom  # a chaptered recording lists its chapters
    screenshot = tmp_path / "catalog.png"
    done = chromium(tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1280,900", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert screenshot.stat().st_size > 1000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_filters_narrow_the_media_in_the_page(page: Path, tmp_path: Path) -> None:
    assert sorted(rows(tmp_path, page.as_uri() + "#camera=HERO9%20Black")) == ["aa02", "aa03"]
    assert rows(tmp_path, page.as_uri() + "#camera=HERO9%20Black&type=photo") == ["aa03"]
    assert rows(tmp_path, page.as_uri() + "#q=gx020002") == ["aa02"]  # search finds a chapter's name
    assert rows(tmp_path, page.as_uri() + "#state=archived") == ["aa02", "aa04"]  # in capture order in a month
