"""`GET /media/{id}/moments` and the listing's `moments_count`, as the sidecar reads them (issue 14)."""

from __future__ import annotations

import pytest
import requests

from devtools.gopro_simulator import SimMedia, SimulatorConfig
from devtools.gopro_simulator.library import generate_library
from pipeline.providers.gopro.parsing import parse_moments, parse_search_page
from tests.fixtures.simulator import SimulatorFactory
from tests.simulator.helpers import TIMEOUT, api_headers, search

pytestmark = pytest.mark.integration
MEDIUM = "cc0000000000000000000001"


def test_the_listing_counts_the_moments_the_moments_endpoint_answers(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(SimulatorConfig(media=[SimMedia(id=MEDIUM, content_title="Ridge", moments=(1500, 9000))]))
    listed = search(sim, per_page=10, page=1).json()
    [item] = parse_search_page(listed, requested_page=1).items
    assert (item.moments_count, item.title, item.camera_model) == (2, "Ridge", "HERO9 Black")
    assert item.duration_s is not None
    assert (item.width, item.height) == (3840, 2160)
    answer = requests.get(f"{sim.base_url}/media/{MEDIUM}/moments", headers=api_headers(sim), timeout=TIMEOUT)
    assert answer.status_code == 200
    assert [m.time_ms for m in parse_moments(answer.json())] == [1500, 9000]


def test_moments_need_a_token_and_an_existing_medium(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(SimulatorConfig(media=[SimMedia(id=MEDIUM)]))
    url = f"{sim.base_url}/media/{MEDIUM}/moments"
    assert requests.get(url, headers=api_headers(sim, "bogus-token"), timeout=TIMEOUT).status_code == 401
    missing = f"{sim.base_url}/media/cc0000000000000000000009/moments"
    assert requests.get(missing, headers=api_headers(sim), timeout=TIMEOUT).status_code == 404


def test_a_generated_library_has_titles_and_moments_on_some_videos() -> None:
    library = generate_library(SimulatorConfig(videos=30, photos=5, seed=11))
    assert any(m.moments for m in library)
    assert any(m.content_title for m in library)
    assert all(not m.moments for m in library if not m.is_video_like)
