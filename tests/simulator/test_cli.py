"""`python -m devtools.gopro_simulator`: the local runtime and benchmarks start the simulator this way."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools.gopro_simulator import ACCEPT_HEADER, MB
from devtools.gopro_simulator.__main__ import build_parser, config_from_args

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CliSim = tuple[subprocess.Popen[str], dict[str, str]]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.gopro_simulator", "--port", "0", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def cli_sim() -> Iterator[CliSim]:
    process = _start("--videos", "3", "--photos", "2", "--video-size", "200KB", "--seed", "4", "--json")
    try:
        assert process.stdout is not None
        summary = json.loads(process.stdout.readline())
        yield process, summary
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_cli_prints_base_url_and_working_credentials(
    cli_sim: CliSim,
) -> None:
    process, summary = cli_sim
    base = summary["GOPRO_API_URL"]
    assert summary["base_url"] == base == summary["GOPRO_AUTH_URL"]
    assert base.startswith("http://127.0.0.1:")
    assert summary["media"] == 5
    form = {
        "grant_type": "refresh_token",
        "client_id": summary["GOPRO_CLIENT_ID"],
        "client_secret": summary["GOPRO_CLIENT_SECRET"],
        "refresh_token": summary["GOPRO_REFRESH_TOKEN"],
    }
    token = requests.post(f"{base}/v1/oauth2/token", data=form, timeout=10).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT_HEADER}
    listing = requests.get(f"{base}/media/search", headers=headers, timeout=10).json()
    assert listing["_pages"]["total_items"] == 5
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_cli_export_lines_and_given_credentials() -> None:
    process = _start("--videos", "1", "--photos", "0", "--client-id", "X", "--client-secret", "Y")
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(10)]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert lines[0].startswith("# GoPro simulator on http://127.0.0.1:")
    assert "export GOPRO_CLIENT_ID=X\n" in lines
    assert "export GOPRO_CLIENT_SECRET=Y\n" in lines


def test_cli_flags_map_onto_the_config() -> None:
    args = build_parser().parse_args(
        [
            *("--port", "8765", "--videos", "12", "--photos", "2", "--video-size", "5MB", "--seed", "1"),
            *("--bandwidth", "10MB", "--client-id", "X", "--client-secret", "Y", "--refresh-token", "Z"),
            *("--rotate-refresh-tokens", "--repeat-last-item", "--url-ttl", "60", "--content-host", "localhost"),
        ]
    )
    config = config_from_args(args)
    assert (config.port, config.videos, config.photos, config.video_size, config.seed) == (8765, 12, 2, 5 * MB, 1)
    assert config.bandwidth == 10 * MB
    assert (config.client_id, config.client_secret, config.refresh_token) == ("X", "Y", "Z")
    assert config.rotate_refresh_tokens
    assert config.repeat_last_item
    assert (config.url_ttl, config.content_host) == (60, "localhost")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--video-size", "lots"])


def test_cli_switches_on_every_type_short_pages_and_an_absurd_size() -> None:
    from devtools.gopro_simulator import ALL_TYPES, AbsurdValue, ShortPage

    config = config_from_args(build_parser().parse_args(["--every-type", "--short-pages", "3", "--absurd-size"]))
    assert config.media is not None
    assert set(ALL_TYPES) <= {m.type for m in config.media}
    assert len(config.media) == config.videos + config.photos + len(ALL_TYPES)
    assert ShortPage(count=3) in config.faults
    assert any(isinstance(rule, AbsurdValue) for rule in config.faults)
    assert config_from_args(build_parser().parse_args([])).faults == ()
