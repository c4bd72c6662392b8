"""`GET /media/search`: the Accept rule, paging, fields, filters, the repeated-item quirk, the library mix."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import requests

from devtools.gopro_simulator import ACCEPT_HEADER, GoProSimulator, MediaType, SimMedia, SimulatorConfig
from devtools.gopro_simulator.library import LISTING_FIELDS
from tests.fixtures.simulator import SimulatorFactory
from tests.simulator.helpers import TIMEOUT, all_pages, search

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "*/*",
        "application/vnd.gopro.jk.media+json; version=1.0.0",
    ],
)
def test_listing_without_the_jk_accept_header_is_406(simulator: GoProSimulator, accept: str | None) -> None:
    headers = {"Authorization": f"Bearer {simulator.credentials.access_token}"}
    if accept is not None:
        headers["Accept"] = accept
    answer = requests.get(f"{simulator.base_url}/media/search", headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 406


def test_listing_accepts_the_jk_media_type_among_others(simulator: GoProSimulator) -> None:
    headers = {
        "Authorization": f"Bearer {simulator.credentials.access_token}",
        "Accept": f"application/json, {ACCEPT_HEADER}",
    }
    answer = requests.get(f"{simulator.base_url}/media/search", headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 200


def test_page_shape_and_paging_cover_the_library_once(simulator: GoProSimulator) -> None:
    first = search(simulator, per_page=3, page=1).json()
    library = simulator.library
    assert first["_pages"] == {
        "current_page": 1,
        "per_page": 3,
        "total_items": len(library),
        "total_pages": -(-len(library) // 3),
    }
    assert first["_embedded"]["errors"] == []
    listed = all_pages(simulator, per_page=3)
    assert sorted(m["id"] for m in listed) == sorted(m.id for m in library)
    past_the_end = search(simulator, per_page=3, page=99).json()
    assert past_the_end["_embedded"]["media"] == []


def test_default_order_is_newest_created_first_and_captured_at_can_be_chosen(simulator: GoProSimulator) -> None:
    by_created = [m["created_at"] for m in all_pages(simulator, per_page=100, fields="id,created_at")]
    assert by_created == sorted(by_created, reverse=True)
    by_captured = [
        m["captured_at"] for m in all_pages(simulator, per_page=100, order_by="captured_at", fields="captured_at")
    ]
    assert by_captured == sorted(by_captured, reverse=True)
    assert search(simulator, order_by="size").status_code == 400


def test_fields_selects_exactly_the_requested_fields(simulator: GoProSimulator) -> None:
    media = search(simulator, per_page=100, fields="id,file_size,ready_to_view,not_a_field").json()
    for medium in media["_embedded"]["media"]:
        assert set(medium) == {"id", "file_size", "ready_to_view"}
    everything = search(simulator, per_page=1).json()["_embedded"]["media"][0]
    assert set(everything) == set(LISTING_FIELDS)
    assert everything["gopro_user_id"] == simulator.credentials.user_id


def test_per_page_is_capped_at_100_and_bad_numbers_are_400(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(videos=0, photos=120, photo_size=10, burst_fraction=0, timelapse_fraction=0)
    page = search(sim, per_page=500, fields="id").json()
    assert page["_pages"]["per_page"] == 100
    assert len(page["_embedded"]["media"]) == 100
    assert page["_pages"]["total_pages"] == 2
    for bad in ({"per_page": 0}, {"page": 0}, {"page": "x"}):
        answer = search(sim, **bad)
        assert answer.status_code == 400
        assert answer.json()["_embedded"]["errors"][0]["code"] == 400


def test_type_and_processing_state_filters(gopro_sim: SimulatorFactory) -> None:
    media = [
        SimMedia(id="a" * 24, type=MediaType.VIDEO),
        SimMedia(id="b" * 24, type=MediaType.PHOTO, size=10),
        SimMedia(id="c" * 24, type=MediaType.VIDEO, ready_to_view="transcoding"),
        SimMedia(id="d" * 24, type=MediaType.BURST, size=10, items=3, ready_to_view="failure"),
    ]
    sim = gopro_sim(media=media)
    assert {m["id"] for m in all_pages(sim, type="Video")} == {"a" * 24, "c" * 24}
    assert {m["id"] for m in all_pages(sim, type="photo,burst")} == {"b" * 24, "d" * 24}
    assert {m["id"] for m in all_pages(sim, processing_states="ready")} == {"a" * 24, "b" * 24}
    assert {m["id"] for m in all_pages(sim, processing_states="transcoding,failure")} == {"c" * 24, "d" * 24}


@pytest.mark.parametrize("at_runtime", [False, True])
def test_repeat_last_item_quirk_needs_dedupe_by_id(gopro_sim: SimulatorFactory, at_runtime: bool) -> None:
    sim = gopro_sim(videos=4, photos=3, video_size=1000, photo_size=100, repeat_last_item=not at_runtime)
    if at_runtime:
        sim.faults.set_repeat_last_item(True)
    page1 = search(sim, per_page=3, page=1, fields="id").json()["_embedded"]["media"]
    page2 = search(sim, per_page=3, page=2, fields="id").json()["_embedded"]["media"]
    assert page2[0] == page1[-1]
    listed = [m["id"] for m in all_pages(sim, per_page=3, fields="id")]
    assert len(listed) > len(set(listed))
    assert set(listed) == {m.id for m in sim.library}


def test_generated_library_has_every_documented_quirk(simulator: GoProSimulator) -> None:
    library = simulator.library
    listed = {m["id"]: m for m in all_pages(simulator, per_page=100)}
    assert {m.type for m in library} == {
        MediaType.VIDEO,
        MediaType.PHOTO,
        MediaType.BURST,
        MediaType.TIMELAPSE,
        MediaType.TIMELAPSE_VIDEO,
    }
    assert any(re.fullmatch(r"[0-9a-f]{24}", m.id) for m in library)
    assert any(len(m.id) == 13 for m in library)
    assert any(m["file_size"] is None for m in listed.values())
    assert any(m["filename"] == "" for m in listed.values())
    assert any(m.type == MediaType.VIDEO and m.items > 1 for m in library)
    years = set()
    for medium in listed.values():
        for name in ("captured_at", "created_at"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", medium[name])
        years.add(datetime.fromisoformat(medium["captured_at"]).year)
        source = simulator.media(medium["id"])
        if medium["file_size"] is not None:
            assert medium["file_size"] == source.total_size
        assert medium["item_count"] == source.items
    assert len(years) >= 3


def test_library_is_deterministic_per_seed() -> None:
    config = SimulatorConfig(videos=10, photos=5, seed=5)
    same = [(m.id, m.type, m.sizes, m.filename) for m in GoProSimulator(config).library]
    again = [(m.id, m.type, m.sizes, m.filename) for m in GoProSimulator(config).library]
    other = [(m.id, m.type, m.sizes, m.filename) for m in GoProSimulator(config.with_overrides(seed=6)).library]
    assert same == again
    assert same != other
    assert len(same) == 15


def test_size_jitter_varies_sizes_around_the_configured_one() -> None:
    sizes = [m.sizes[0] for m in GoProSimulator(videos=20, photos=0, video_size=1000, size_jitter=0.2).library]
    assert len(set(sizes)) > 5
    assert all(700 <= size <= 1200 for size in sizes)


def test_explicit_media_are_listed_as_given(gopro_sim: SimulatorFactory) -> None:
    legacy = SimMedia(id="62NzWRrpPXm7o", type=MediaType.VIDEO, item_sizes=(5, 7), filename="")
    unknown_size = SimMedia(id="f" * 24, type=MediaType.PHOTO, size=11, file_size_known=False)
    off = SimMedia(id="e" * 24, type=MediaType.VIDEO, size=100, file_size_offset=3000)
    sim = gopro_sim(media=[legacy, unknown_size, off])
    listed = {m["id"]: m for m in all_pages(sim)}
    assert listed["62NzWRrpPXm7o"]["filename"] == ""
    assert listed["62NzWRrpPXm7o"]["file_size"] == 12
    assert listed["62NzWRrpPXm7o"]["item_count"] == 2
    assert listed["f" * 24]["file_size"] is None
    assert listed["e" * 24]["file_size"] == 3100


def test_media_added_and_deleted_at_runtime_show_in_the_listing(simulator: GoProSimulator) -> None:
    victim = simulator.library[0].id
    simulator.delete_media(victim)
    simulator.add_media(SimMedia(id="1" * 24, size=10))
    ids = {m["id"] for m in all_pages(simulator, per_page=100)}
    assert victim not in ids
    assert "1" * 24 in ids
    assert simulator.media(victim).deleted
