"""The URL policy's allow list: exact hosts and `*.` subdomain patterns."""

from __future__ import annotations

import pytest

from pipeline.transfer.url_policy import host_allowed


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        ("https://a.gopro.com/x", ("a.gopro.com",), True),
        ("https://A.GoPro.com./x", ("a.gopro.com",), True),
        ("https://b.gopro.com/x", ("a.gopro.com",), False),
        ("https://x.cdn.gopro.com/x", ("*.gopro.com",), True),
        ("https://gopro.com/x", ("*.gopro.com",), False),
        ("https://evilgopro.com/x", ("*.gopro.com",), False),
        ("https://anything/x", None, True),
    ],
)
def test_host_allowed(url: str, allowed: tuple[str, ...] | None, ok: bool):
    assert host_allowed(url, allowed) is ok
