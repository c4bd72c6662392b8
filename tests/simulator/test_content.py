"""The content endpoint: deterministic bytes, Range semantics, bandwidth cap, bounded memory for huge bodies."""

from __future__ import annotations

import hashlib
import http.client
import os
import time
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.gopro_simulator import GIB, MB, MIB, GoProSimulator, MediaType, SimMedia, parse_size
from devtools.gopro_simulator import content as sim_content
from devtools.gopro_simulator.content import BLOCK_SIZE, ContentKey
from devtools.gopro_simulator.server import parse_range
from tests.fixtures.simulator import SimulatorFactory
from tests.simulator.helpers import TIMEOUT, source_url

pytestmark = pytest.mark.integration

SIZE = 3 * MIB + 12_345  # spans block boundaries and ends mid-block
MEDIUM = SimMedia(id="ab" * 12, type=MediaType.VIDEO, size=SIZE)
OTHER = SimMedia(id="cd" * 12, type=MediaType.VIDEO, size=SIZE)
EMPTY = SimMedia(id="ef" * 12, type=MediaType.VIDEO, size=0)


@pytest.fixture
def sim(gopro_sim: SimulatorFactory) -> GoProSimulator:
    return gopro_sim(media=[MEDIUM, OTHER, EMPTY])


def get(url: str, range_header: str | None = None) -> requests.Response:
    headers = {"Range": range_header} if range_header else {}
    return requests.get(url, headers=headers, timeout=TIMEOUT)


def test_whole_body_without_range(sim: GoProSimulator) -> None:
    answer = get(source_url(sim, MEDIUM.id))
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == SIZE == len(answer.content)
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["ETag"].startswith('"')
    assert answer.headers["Content-Type"] == "binary/octet-stream"  # as GoPro's CloudFront serves every object
    assert "Content-Range" not in answer.headers
    assert hashlib.sha256(answer.content).hexdigest() == sim.source_sha256(MEDIUM.id)
    assert answer.content == sim.source_bytes(MEDIUM.id)
    assert sim.source_size(MEDIUM.id) == SIZE


def test_bytes_are_deterministic_and_differ_between_media(
    sim: GoProSimulator, gopro_sim: SimulatorFactory
) -> None:
    first = get(source_url(sim, MEDIUM.id)).content
    second = get(source_url(sim, MEDIUM.id)).content
    other = get(source_url(sim, OTHER.id)).content
    assert first == second
    assert first != other
    again = gopro_sim(media=[MEDIUM])
    assert get(source_url(again, MEDIUM.id)).content == first
    assert get(source_url(sim, MEDIUM.id)).headers["ETag"] == get(source_url(again, MEDIUM.id)).headers["ETag"]
    reseeded = gopro_sim(media=[MEDIUM], seed=99)
    assert reseeded.source_sha256(MEDIUM.id) != sim.source_sha256(MEDIUM.id)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        (f"bytes={BLOCK_SIZE - 5}-{BLOCK_SIZE + 4}", BLOCK_SIZE - 5, BLOCK_SIZE + 4),
        (f"bytes={2 * MIB}-", 2 * MIB, SIZE - 1),
        ("bytes=-100", SIZE - 100, SIZE - 1),
        (f"bytes=-{SIZE + 50}", 0, SIZE - 1),
        (f"bytes=5-{SIZE * 2}", 5, SIZE - 1),
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
    ],
)
def test_satisfiable_ranges_are_206(sim: GoProSimulator, header: str, first: int, last: int) -> None:
    answer = get(source_url(sim, MEDIUM.id), header)
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert int(answer.headers["Content-Length"]) == last - first + 1
    expected = sim_content.read(sim.config.seed, ContentKey(MEDIUM.id, "source", 1), first, last + 1)
    assert answer.content == expected


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(sim: GoProSimulator, header: str) -> None:
    answer = get(source_url(sim, MEDIUM.id), header)
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{SIZE}"


def test_any_range_of_an_empty_object_is_416(sim: GoProSimulator) -> None:
    url = source_url(sim, EMPTY.id)
    assert get(url).status_code == 200
    assert get(url).content == b""
    assert get(url, "bytes=0-").status_code == 416


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "items=0-5", "bytes=abc"])
def test_invalid_or_multi_ranges_are_ignored_with_200(sim: GoProSimulator, header: str) -> None:
    answer = get(source_url(sim, MEDIUM.id), header)
    assert answer.status_code == 200
    assert len(answer.content) == SIZE


def test_head_reports_size_and_range(sim: GoProSimulator) -> None:
    head = source_url(sim, MEDIUM.id, method="head")
    answer = requests.head(head, timeout=TIMEOUT)
    assert (answer.status_code, int(answer.headers["Content-Length"])) == (200, SIZE)
    ranged = requests.head(head, headers={"Range": "bytes=0-99"}, timeout=TIMEOUT)
    assert ranged.status_code == 206
    assert ranged.headers["Content-Length"] == "100"


@given(
    size=st.integers(min_value=0, max_value=3 * BLOCK_SIZE),
    start=st.integers(min_value=0, max_value=3 * BLOCK_SIZE),
    length=st.integers(min_value=0, max_value=BLOCK_SIZE + 10),
    chunk=st.sampled_from([1000, 64 * 1024, BLOCK_SIZE]),
)
@settings(max_examples=25, deadline=None)
def test_any_slice_equals_the_same_slice_of_the_whole(size: int, start: int, length: int, chunk: int) -> None:
    key = ContentKey("x", "source", 1)
    start = min(start, size)
    stop = min(size, start + length)
    whole = b"".join(sim_content.iter_range(7, key, 0, size))
    pieces = list(sim_content.iter_range(7, key, start, stop, chunk))
    assert all(len(piece) <= chunk for piece in pieces)
    assert b"".join(pieces) == whole[start:stop]


def test_parse_range_unit_cases() -> None:
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=100-", 100) == "unsatisfiable"
    assert parse_range("bytes=-", 100) is None
    assert parse_range("bytes=0-1, 3-4", 100) is None


def test_parse_size() -> None:
    assert parse_size("5MB") == 5 * MB
    assert parse_size("2GiB") == 2 * GIB
    assert parse_size("1.5M") == 1_500_000
    assert parse_size("123") == 123
    assert parse_size("10MB/s") == 10 * MB
    with pytest.raises(ValueError, match="not a size"):
        parse_size("ten")


def test_bandwidth_cap_slows_a_transfer(gopro_sim: SimulatorFactory) -> None:
    medium = SimMedia(id="1a" * 12, size=2 * MB)
    sim = gopro_sim(media=[medium], bandwidth=4 * MB)
    url = source_url(sim, medium.id)
    started = time.monotonic()
    data = get(url).content
    elapsed = time.monotonic() - started
    assert len(data) == 2 * MB
    assert elapsed >= 0.4
    assert hashlib.sha256(data).hexdigest() == sim.source_sha256(medium.id)


def test_bandwidth_can_change_at_runtime(gopro_sim: SimulatorFactory) -> None:
    medium = SimMedia(id="2b" * 12, size=1 * MB)
    sim = gopro_sim(media=[medium])
    sim.faults.set_bandwidth(2 * MB)
    started = time.monotonic()
    get(source_url(sim, medium.id))
    assert time.monotonic() - started >= 0.4
    sim.faults.set_bandwidth(None)
    with pytest.raises(ValueError, match="positive"):
        sim.faults.set_bandwidth(0)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def test_a_2_gib_body_streams_with_bounded_memory(gopro_sim: SimulatorFactory) -> None:
    """Generated per block, a 2 GiB answer must not grow memory (server and client share this process)."""
    size = 2 * GIB
    medium = SimMedia(id="3c" * 12, size=size)
    sim = gopro_sim(media=[medium])
    parts = urlsplit(source_url(sim, medium.id))
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    baseline = _rss_bytes()
    peak = baseline or 0
    started = time.monotonic()
    connection.request("GET", f"{parts.path}?{parts.query}")
    answer = connection.getresponse()
    assert answer.status == 200
    assert int(answer.headers["Content-Length"]) == size
    buffer = memoryview(bytearray(4 * MIB))
    received, reads = 0, 0
    while count := answer.readinto(buffer):
        received += count
        reads += 1
        if reads % 64 == 0:
            peak = max(peak, _rss_bytes() or 0)
    connection.close()
    elapsed = time.monotonic() - started
    assert received == size
    if baseline is not None:
        assert peak - baseline < 64 * MIB
    print(f"2 GiB streamed in {elapsed:.2f}s ({size / elapsed / 1e6:.0f} MB/s)")
