"""Every injectable fault, at construction and at runtime: the pipeline's resilience tests build on these."""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from devtools.gopro_simulator import (
    MB,
    CutConnection,
    GoProSimulator,
    ListingFault,
    MalformedListing,
    MediaType,
    RateLimit,
    ServerError,
    SimMedia,
    SlowFirstByte,
)
from tests.fixtures.simulator import SimulatorFactory
from tests.simulator.helpers import TIMEOUT, descriptor, search, source_url, token_request

pytestmark = pytest.mark.integration

MEDIUM = SimMedia(id="f1" * 12, type=MediaType.VIDEO, size=1 * MB)
OTHER = SimMedia(id="f2" * 12, type=MediaType.VIDEO, size=300_000)
PHOTOS = [SimMedia(id=f"{n:024x}", type=MediaType.PHOTO, size=100) for n in range(7)]


@pytest.fixture
def sim(gopro_sim: SimulatorFactory) -> GoProSimulator:
    return gopro_sim(media=[MEDIUM, OTHER, *PHOTOS])


def test_rate_limit_for_the_next_n_api_calls_with_retry_after(sim: GoProSimulator) -> None:
    sim.faults.rate_limit(count=2, retry_after=7)
    first, second, third = search(sim), descriptor(sim, MEDIUM.id), search(sim)
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["Retry-After"] == "7"
    assert [r.fault for r in sim.requests[:2]] == ["rate_limit", "rate_limit"]
    assert sim.faults.active == []


def test_rate_limit_for_one_endpoint_only(sim: GoProSimulator) -> None:
    sim.faults.rate_limit(count=None, endpoint="download")
    assert search(sim).status_code == 200
    assert descriptor(sim, MEDIUM.id).status_code == 429
    assert descriptor(sim, MEDIUM.id).status_code == 429
    sim.faults.clear()
    assert descriptor(sim, MEDIUM.id).status_code == 200


def test_api_faults_leave_content_alone_unless_asked(sim: GoProSimulator) -> None:
    url = source_url(sim, OTHER.id)
    sim.faults.rate_limit(count=None)
    assert requests.get(url, timeout=TIMEOUT).status_code == 200
    sim.faults.clear()
    sim.faults.rate_limit(count=1, endpoint="content", retry_after=2)
    limited = requests.get(url, timeout=TIMEOUT)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
    assert b"SlowDown" in limited.content


def test_token_endpoint_can_be_rate_limited(sim: GoProSimulator) -> None:
    sim.faults.rate_limit(count=1, endpoint="token")
    refresh = sim.credentials.refresh_token
    assert token_request(sim, grant_type="refresh_token", refresh_token=refresh).status_code == 429
    assert token_request(sim, grant_type="refresh_token", refresh_token=refresh).status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_burst(sim: GoProSimulator, status: int) -> None:
    sim.faults.server_errors(count=3, status=status)
    answers = [search(sim) for _ in range(4)]
    assert [a.status_code for a in answers] == [status, status, status, 200]
    assert answers[0].headers["Content-Type"].startswith("text/html")


def test_server_errors_on_content(sim: GoProSimulator) -> None:
    url = source_url(sim, OTHER.id)
    sim.faults.server_errors(count=1, status=503, endpoint="content")
    assert requests.get(url, timeout=TIMEOUT).status_code == 503
    assert requests.get(url, timeout=TIMEOUT).status_code == 200


def test_faults_given_at_construction(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(
        media=[MEDIUM],
        faults=(
            RateLimit(count=1, retry_after=3),
            ServerError(count=1, status=502),
            MalformedListing(kind="empty_page", count=1),
        ),
    )
    assert search(sim).status_code == 429
    assert search(sim).status_code == 502
    assert search(sim).json()["_embedded"]["media"] == []
    assert len(search(sim).json()["_embedded"]["media"]) == 1
    sim.faults.clear()
    assert sim.faults.active == []


def test_concurrent_calls_consume_a_counted_fault_exactly(sim: GoProSimulator) -> None:
    sim.faults.rate_limit(count=5)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: search(sim, per_page=1).status_code, range(24)))
    assert statuses.count(429) == 5
    assert statuses.count(200) == 19


def _stream_all(url: str, headers: dict[str, str] | None = None) -> tuple[bytes, Exception | None]:
    """Read a body with http.client, keeping every byte that arrived before a failure.

    (urllib3 drops a partially filled read when the connection breaks, which would hide where the cut was.)
    """
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    received = bytearray()
    buffer = memoryview(bytearray(64 * 1024))
    try:
        connection.request("GET", f"{parts.path}?{parts.query}", headers=headers or {})
        answer = connection.getresponse()
        while count := answer.readinto(buffer):
            received += buffer[:count]
        if answer.length:
            raise http.client.IncompleteRead(bytes(received), answer.length)
    except (OSError, http.client.HTTPException) as error:
        return bytes(received), error
    finally:
        connection.close()
    return bytes(received), None


def test_connection_cut_after_n_bytes_then_resume_with_range(sim: GoProSimulator) -> None:
    sim.faults.cut_connection(after_bytes=300_000, count=1)
    url = source_url(sim, MEDIUM.id)
    partial, error = _stream_all(url)
    assert error is not None
    assert len(partial) == 300_000
    record = sim.requests_to("content")[-1]
    assert (record.bytes_sent, record.completed, record.fault) == (300_000, False, "cut_connection:300000")
    rest, error = _stream_all(url, {"Range": f"bytes={len(partial)}-"})
    assert error is None
    assert hashlib.sha256(partial + rest).hexdigest() == sim.source_sha256(MEDIUM.id)


def test_connection_cut_with_reset(sim: GoProSimulator) -> None:
    sim.faults.cut_connection(after_bytes=100_000, reset=True)
    partial, error = _stream_all(source_url(sim, MEDIUM.id))
    assert error is not None
    assert len(partial) <= 100_000


def test_connection_cut_per_media_and_count(sim: GoProSimulator) -> None:
    sim.faults.cut_connection(after_bytes=1000, count=2, media_id=OTHER.id)
    whole, error = _stream_all(source_url(sim, MEDIUM.id))
    assert (len(whole), error) == (MEDIUM.size, None)
    for _ in range(2):
        partial, error = _stream_all(source_url(sim, OTHER.id))
        assert (len(partial), error is not None) == (1000, True)
    whole, error = _stream_all(source_url(sim, OTHER.id))
    assert (len(whole), error) == (OTHER.size, None)


def test_cut_connection_at_construction(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(media=[OTHER], faults=(CutConnection(after_bytes=5000),))
    partial, error = _stream_all(source_url(sim, OTHER.id))
    assert (len(partial), error is not None) == (5000, True)


def test_slow_first_byte(sim: GoProSimulator) -> None:
    sim.faults.slow_first_byte(delay=0.3, count=1, endpoint="content", media_id=OTHER.id)
    url = source_url(sim, OTHER.id)
    started = time.monotonic()
    assert requests.get(url, timeout=TIMEOUT).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert sim.faults.active == []


def test_slow_first_byte_can_trip_a_client_timeout(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(media=[OTHER], faults=(SlowFirstByte(delay=0.5, endpoint="search"),))
    search_url = f"{sim.base_url}/media/search"
    with pytest.raises(requests.ReadTimeout):
        requests.get(search_url, timeout=0.1)


def test_listing_html_502(sim: GoProSimulator) -> None:
    sim.faults.malformed_listing(ListingFault.HTML_502)
    answer = search(sim)
    assert answer.status_code == 502
    assert answer.text.startswith("<html>")


def test_listing_truncated_json(sim: GoProSimulator) -> None:
    sim.faults.malformed_listing("truncated_json")
    answer = search(sim)
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)


def test_listing_missing_fields(sim: GoProSimulator) -> None:
    sim.faults.malformed_listing(ListingFault.MISSING_FIELDS)
    body = search(sim, per_page=5).json()
    media = body["_embedded"]["media"]
    assert "id" not in media[0]
    assert "type" not in media[1]
    assert "total_items" not in body["_pages"]
    assert all("id" in medium for medium in media[2:])


def test_listing_wrong_types(sim: GoProSimulator) -> None:
    sim.faults.malformed_listing(ListingFault.WRONG_TYPES)
    first = search(sim, per_page=5).json()["_embedded"]["media"][0]
    assert isinstance(first["file_size"], str)
    assert isinstance(first["item_count"], str)
    assert isinstance(first["captured_at"], int)
    assert first["filename"] is None


def test_listing_empty_page_in_the_middle(sim: GoProSimulator) -> None:
    sim.faults.malformed_listing(ListingFault.EMPTY_PAGE, page=2)
    first = search(sim, per_page=3, page=1).json()
    second = search(sim, per_page=3, page=2).json()
    third = search(sim, per_page=3, page=3).json()
    assert len(first["_embedded"]["media"]) == 3
    assert second["_embedded"]["media"] == []
    assert second["_pages"]["total_pages"] == 3
    assert len(third["_embedded"]["media"]) == 3
    assert len(search(sim, per_page=3, page=2).json()["_embedded"]["media"]) == 3


def test_listing_embedded_errors(sim: GoProSimulator) -> None:
    sim.faults.malformed_listing(ListingFault.EMBEDDED_ERRORS)
    body = search(sim).json()
    assert body["_embedded"]["media"] == []
    assert {"reason", "code", "description", "id"} <= body["_embedded"]["errors"][0].keys()


def test_ignore_range_answers_200_with_the_whole_body(sim: GoProSimulator) -> None:
    sim.faults.ignore_range(count=1, media_id=OTHER.id)
    url = source_url(sim, OTHER.id)
    answer = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=TIMEOUT)
    assert answer.status_code == 200
    assert len(answer.content) == OTHER.size
    assert requests.get(url, headers={"Range": "bytes=100-199"}, timeout=TIMEOUT).status_code == 206


def test_link_expiring_mid_transfer(gopro_sim: SimulatorFactory) -> None:
    """As on S3, a started transfer finishes after the link expires, but resuming with the old link fails."""
    sim = gopro_sim(media=[MEDIUM], url_ttl=5, bandwidth=4 * MB)
    url = source_url(sim, MEDIUM.id)
    received = bytearray()
    with requests.get(url, stream=True, timeout=TIMEOUT) as answer:
        chunks = answer.iter_content(64 * 1024)
        received += next(chunks)
        sim.advance_clock(6)
        for chunk in chunks:
            received += chunk
    assert len(received) == MEDIUM.size
    resumed = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=TIMEOUT)
    assert resumed.status_code == 403
    assert b"Request has expired" in resumed.content
    assert requests.get(source_url(sim, MEDIUM.id), timeout=TIMEOUT).status_code == 200


def test_clear_restores_configured_settings(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(media=[OTHER], url_ttl=100, bandwidth=10 * MB)
    sim.faults.set_url_ttl(1)
    sim.faults.set_bandwidth(None)
    sim.faults.set_repeat_last_item(True)
    sim.faults.server_errors(count=None)
    sim.faults.clear()
    assert (sim.faults.url_ttl, sim.faults.bandwidth, sim.faults.repeat_last_item) == (100, 10 * MB, False)
    assert sim.faults.active == []


def test_stop_does_not_hang_on_open_keep_alive_or_streaming_connections(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(media=[MEDIUM], bandwidth=100_000)
    session = requests.Session()
    assert search(sim).status_code == 200
    session.get(f"{sim.base_url}/nothing", timeout=TIMEOUT)
    url = source_url(sim, MEDIUM.id)
    streaming = threading.Thread(target=_stream_all, args=(url,), daemon=True)
    streaming.start()
    time.sleep(0.2)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 3
    streaming.join(timeout=5)
    assert not streaming.is_alive()
    session.close()
