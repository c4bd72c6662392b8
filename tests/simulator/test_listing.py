"""`GET /media/search`: the Accept rule, paging, fields, filters, the repeated-item quirk, the library mix."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import requests

from devtools.gopro_simulator import (
    ACCEPT_HEADER,
    ALL_TYPES,
    READY_STATES,
    AbsurdKind,
    GoProSimulator,
    MediaType,
    SimMedia,
    SimulatorConfig,
    every_type_library,
)
from devtools.gopro_simulator.library import LISTING_FIELDS
from tests.fixtures.simulator import SimulatorFactory
from tests.simulator.helpers import TIMEOUT, all_pages, search

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
@pytest.mark.parametrize("authorised", [True, False])
def test_listing_without_the_jk_accept_header_is_406_before_authentication(
    simulator: GoProSimulator, accept: str | None, authorised: bool
) -> None:
    headers = {"Authorization": f"Bearer {simulator.credentials.access_token}"} if authorised else {}
    if accept is not None:
        headers["Accept"] = accept
    answer = requests.get(f"{simulator.base_url}/media/search", headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 406


@pytest.mark.parametrize("version", ["1.0.0", "3.0.0"])
def test_a_wrong_vendor_version_is_410_gone(simulator: GoProSimulator, version: str) -> None:
    headers = {
        "Authorization": f"Bearer {simulator.credentials.access_token}",
        "Accept": f"application/vnd.gopro.jk.media+json; version={version}",
    }
    answer = requests.get(f"{simulator.base_url}/media/search", headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 410


def test_the_web_apps_search_media_type_is_accepted(simulator: GoProSimulator) -> None:
    headers = {
        "Authorization": f"Bearer {simulator.credentials.access_token}",
        "Accept": "application/vnd.gopro.jk.media.search+json; version=2.0.0",
    }
    answer = requests.get(f"{simulator.base_url}/media/search", headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 200


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


def test_every_documented_type_and_ready_state_is_listed_as_given(gopro_sim: SimulatorFactory) -> None:
    media = every_type_library()
    for medium, state in zip(media, READY_STATES, strict=False):
        medium.ready_to_view = state
    sim = gopro_sim(SimulatorConfig(media=media))
    listed = {m["id"]: m for m in all_pages(sim, per_page=100)}
    assert sorted(m["type"] for m in listed.values()) == sorted(ALL_TYPES)
    assert len(ALL_TYPES) == 16
    assert {m["ready_to_view"] for m in listed.values()} == set(READY_STATES)
    assert len(READY_STATES) == 11
    edits = [m for m in listed.values() if m["type"] in ("MultiClipEdit", "Edit")]
    assert [(m["file_size"], m["file_extension"]) for m in edits] == [(None, "json"), (None, "json")]
    chaptered = next(m for m in listed.values() if m["type"] == "Chaptered")
    assert chaptered["item_count"] == 3


def test_created_range_bounds_the_listing_inclusively(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(SimulatorConfig(media=every_type_library()))  # one medium an hour from 2025-05-01 08:00
    body = search(sim, per_page=100, created_range="2025-05-01T10:00:00Z,2025-05-01T12:00:00Z").json()
    assert body["_pages"]["total_items"] == 3
    assert sorted(m["created_at"] for m in body["_embedded"]["media"]) == [
        "2025-05-01T10:00:00Z",
        "2025-05-01T11:00:00Z",
        "2025-05-01T12:00:00Z",
    ]
    open_end = search(sim, per_page=100, created_range="2025-05-01T22:00:00Z,").json()
    assert open_end["_pages"]["total_items"] == 2


@pytest.mark.parametrize("value", ["yesterday,today", "2025-05-01T10:00:00Z", ",", "2025-13-01,2025-05-02"])
def test_a_malformed_range_answers_500(gopro_sim: SimulatorFactory, value: str) -> None:
    sim = gopro_sim(SimulatorConfig(media=every_type_library()))
    assert search(sim, per_page=100, created_range=value).status_code == 500


def test_unknown_parameters_are_ignored(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(SimulatorConfig(media=every_type_library()))
    body = search(sim, per_page=100, created_rnage="2025-05-01T10:00:00Z,2025-05-01T12:00:00Z").json()
    assert body["_pages"]["total_items"] == 16


def test_a_short_page_says_it_is_full(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(SimulatorConfig(media=every_type_library()))
    sim.faults.short_pages(items=2, count=1, page=1)
    short = search(sim, per_page=10, page=1).json()
    assert len(short["_embedded"]["media"]) == 2
    assert short["_pages"] == {"current_page": 1, "per_page": 10, "total_items": 16, "total_pages": 2}
    again = search(sim, per_page=10, page=1).json()  # minutes later the same page is full
    assert len(again["_embedded"]["media"]) == 10


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        (AbsurdKind.HUGE_SIZE, "file_size", 10**15),
        (AbsurdKind.NEGATIVE_SIZE, "file_size", -1),
        (AbsurdKind.BAD_DATE, "created_at", "0000-13-45T99:99:99Z"),
    ],
)
def test_one_medium_can_carry_an_absurd_value_on_every_listing(
    gopro_sim: SimulatorFactory, kind: AbsurdKind, field: str, value: object
) -> None:
    media = every_type_library()
    target = media[5].id
    sim = gopro_sim(SimulatorConfig(media=media))
    sim.faults.absurd_value(kind, media_id=target)
    for _ in range(2):
        listed = {m["id"]: m for m in all_pages(sim, per_page=4)}
        assert listed[target][field] == value
        assert all(m[field] != value for i, m in listed.items() if i != target)


def test_an_absurd_id_is_listed_outside_the_id_alphabet(gopro_sim: SimulatorFactory) -> None:
    media = every_type_library()
    sim = gopro_sim(SimulatorConfig(media=media))
    sim.faults.absurd_value(AbsurdKind.BAD_ID, media_id=media[0].id)
    ids = {m["id"] for m in all_pages(sim, per_page=100)}
    assert f"../{media[0].id}" in ids


def test_make_demo_library_has_a_chaptered_recording_and_a_burst_video() -> None:
    from devtools.local_runtime.demo import demo_library

    media = demo_library(burst_video=True).media or ()
    assert any(m.type == MediaType.VIDEO and m.items > 1 for m in media)
    assert [m.type for m in media].count(MediaType.BURST_VIDEO) == 1
