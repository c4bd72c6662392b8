import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.providers.base import MediaType
from pipeline.providers.errors import InvalidMediaId, ProviderResponseError
from pipeline.providers.gopro.parsing import (
    UnreadableMedium,
    media_type_of,
    parse_download,
    parse_medium,
    parse_moments,
    parse_search_page,
    parse_token_answer,
)


def medium(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": "62NzWRrpPXm7o",
        "filename": "GX010042.MP4",
        "file_extension": "mp4",
        "file_size": 3_221_225_472,
        "type": "Video",
        "captured_at": "2024-07-14T09:30:00Z",
        "created_at": "2024-07-15T10:00:00Z",
        "ready_to_view": "ready",
    }
    base.update(overrides)
    return base


def page(media: list, current: int = 1, total: int | None = 3) -> dict[str, Any]:
    pages = {"current_page": current, "per_page": 100, "total_items": 250, "total_pages": total}
    return {"_pages": pages, "_embedded": {"errors": [], "media": media}}


def link(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "head": url + "&head", **extra}


def test_medium_is_parsed_with_types_and_times() -> None:
    item = parse_medium(medium())
    assert item.media_id == "62NzWRrpPXm7o"
    assert item.media_type is MediaType.VIDEO
    assert item.size == 3_221_225_472
    assert item.captured_at is not None
    assert item.captured_at.year == 2024
    assert item.ready


def test_leniency_where_the_api_varies() -> None:
    item = parse_medium(medium(filename="", file_size=None, type="TIMELAPSEVIDEO", ready_to_view="transcoding"))
    assert item.filename == "62NzWRrpPXm7o.mp4"
    assert item.size is None
    assert item.media_type is MediaType.TIMELAPSE_VIDEO
    assert not item.ready
    assert parse_medium(medium(type="Hologram")).media_type is MediaType.UNKNOWN
    assert media_type_of("burst") is MediaType.BURST


@pytest.mark.parametrize(
    "bad",
    [
        {"filename": "x"},  # no id
        medium(id=None),
        medium(id=["a"]),
        medium(file_size="big"),
        medium(file_size=True),
        medium(filename=42),
        medium(captured_at="yesterday"),
        "not an object",
    ],
)
def test_malformed_media_raise_a_typed_error(bad: Any) -> None:
    with pytest.raises(ProviderResponseError):
        parse_medium(bad)


def test_search_page() -> None:
    listing = parse_search_page(page([medium(), medium(id="aaaaaaaaaaaaaaaaaaaaaaaa")]), requested_page=1)
    assert listing.total_pages == 3
    assert [i.media_id for i in listing.items] == ["62NzWRrpPXm7o", "aaaaaaaaaaaaaaaaaaaaaaaa"]


@pytest.mark.parametrize(
    "payload",
    [
        "<html>502 Bad Gateway</html>",
        [],
        {"_pages": {}},
        {"_embedded": {"media": "nope"}},
        {"_embedded": {"media": [], "errors": [{"reason": "x", "code": 1}]}},
        {"_pages": "x", "_embedded": {"media": []}},
        {"_pages": {"total_pages": "many"}, "_embedded": {"media": []}},
    ],
)
def test_malformed_pages_raise_a_typed_error(payload: Any) -> None:
    with pytest.raises(ProviderResponseError):
        parse_search_page(payload, requested_page=1)


def test_one_unreadable_medium_is_skipped_but_a_page_of_them_is_an_error() -> None:
    listing = parse_search_page(
        page([medium(), {"filename": "no-id.mp4"}, medium(id="b" * 24, file_size="x")]), requested_page=1
    )
    assert [i.media_id for i in listing.items] == ["62NzWRrpPXm7o"]
    assert listing.skipped == ("<entry 1>", "b" * 24)
    with pytest.raises(ProviderResponseError, match="no string 'id'"):
        parse_search_page(page([{"filename": "a"}, {"filename": "b"}]), requested_page=1)


@pytest.mark.parametrize(
    ("raw_type", "expected"),
    [
        ("Video", MediaType.VIDEO),
        ("BurstVideo", MediaType.VIDEO),
        ("LoopedVideo", MediaType.VIDEO),
        ("Looped", MediaType.VIDEO),
        ("Chaptered", MediaType.VIDEO),
        ("Livestream", MediaType.VIDEO),
        ("ExternalVideo", MediaType.VIDEO),
        ("Session", MediaType.VIDEO),
        ("TimeLapseVideo", MediaType.TIMELAPSE_VIDEO),
        ("Photo", MediaType.PHOTO),
        ("Burst", MediaType.BURST),
        ("Continuous", MediaType.BURST),  # a series of photos, archived like a burst
        ("TimeLapse", MediaType.TIMELAPSE),
        ("MultiClipEdit", MediaType.EDIT),
        ("Edit", MediaType.EDIT),
        ("Audio", MediaType.AUDIO),
        ("burst_video", MediaType.VIDEO),
        ("Hologram", MediaType.UNKNOWN),
    ],
)
def test_every_documented_type_is_classified(raw_type: str, expected: MediaType) -> None:
    item = parse_medium(medium(type=raw_type))
    assert item.media_type is expected
    assert item.raw_type == raw_type


def test_edits_are_archived_by_default_and_excluded_when_turned_off() -> None:
    edit = medium(type="MultiClipEdit", file_size=None, file_extension="json")
    assert parse_medium(edit).excluded == ""
    assert "INCLUDE_EDITS" in parse_medium(edit, include_edits=False).excluded
    assert parse_medium(medium(), include_edits=False).excluded == ""


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"file_size": 10**15}, "file_size 1000000000000000 is impossible"),
        ({"file_size": -1}, "file_size -1 is impossible"),
        ({"item_count": 0}, "item_count 0 is impossible"),
        ({"item_count": 10**9}, "item_count 1000000000 is impossible"),
        ({"created_at": "0000-13-45T99:99:99Z"}, "created_at '0000-13-45T99:99:99Z' is not a time"),
        ({"captured_at": "yesterday"}, "captured_at 'yesterday' is not a time"),
        ({"created_at": "2999-01-01T00:00:00Z"}, "created_at '2999-01-01T00:00:00Z' is an impossible time"),
        ({"id": "../62NzWRrpPXm7o"}, "id '../62NzWRrpPXm7o' is not a GoPro id"),
    ],
)
def test_an_impossible_value_skips_that_medium_with_a_reason(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnreadableMedium, match=re.escape(reason)):
        parse_medium(medium(**overrides))
    # On a page, the medium is skipped with the reason and the page goes on, even when it is alone on it.
    for media in ([medium(**overrides)], [medium(id="a" * 24), medium(**overrides)]):
        listing = parse_search_page(page(media), requested_page=1)
        assert listing.skip_reasons[-1] == reason
        assert listing.skipped_entries()[-1][1] == reason
    alone = parse_search_page(page([medium(**overrides), medium(**overrides, type="Photo")]), requested_page=1)
    assert alone.items == ()
    assert len(alone.skipped) == 2


def test_a_page_states_its_totals_and_every_id_it_listed() -> None:
    listing = parse_search_page(
        page([medium(), {"filename": "no-id.mp4"}, medium(id="b" * 24, file_size=-5)]), requested_page=1
    )
    assert listing.total_items == 250
    assert listing.listed_ids == ("62NzWRrpPXm7o", "b" * 24)
    assert listing.skipped_entries() == [
        ("<entry 1>", "a medium has no string 'id'"),
        ("b" * 24, "file_size -5 is impossible"),
    ]


def test_a_medium_without_type_is_typed_by_its_extension() -> None:
    untyped = dict(medium())
    del untyped["type"]
    assert parse_medium(untyped).media_type is MediaType.VIDEO
    assert parse_medium({**untyped, "file_extension": "JPG"}).media_type is MediaType.PHOTO
    assert parse_medium({**untyped, "file_extension": "xyz"}).media_type is MediaType.UNKNOWN


def test_an_empty_page_is_returned_as_such_with_its_totals() -> None:
    # Whether an empty page is the end or a short page is the provider's call (it asks again).
    middle = parse_search_page(page([], current=2, total=3), requested_page=2)
    assert (middle.items, middle.total_pages, middle.total_items) == ((), 3, 250)
    assert parse_search_page(page([], current=4, total=3), requested_page=4).items == ()
    assert parse_search_page(page([], total=None), requested_page=9).items == ()


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
        ),
        max_leaves=25,
    )
)
def test_any_json_either_parses_or_raises_provider_response_error(payload: Any) -> None:
    for parse in (
        lambda: parse_search_page(payload, requested_page=1),
        lambda: parse_download(payload, media_id="abcdefabcdef", media_type=MediaType.VIDEO),
        lambda: parse_search_page({"_embedded": {"media": [payload]}}, requested_page=1),
    ):
        with contextlib.suppress(ProviderResponseError):
            parse()


VIDEO = {
    "filename": "GX010042.MP4",
    "_embedded": {
        "files": [link("https://cdn.example/proxy.mp4?sig=1", item_number=1, width=1280)],
        "variations": [
            link("https://cdn.example/hi.mp4?s", label="high_res_proxy_mp4"),
            link("https://cdn.example/src.mp4?s", label="source", type="mp4", width=3840),
        ],
        "sprites": [],
        "sidecar_files": [link("https://cdn.example/g.zip", label="gpmf", type="zip")],
    },
}


def test_a_video_archives_the_source_variation_never_the_proxy() -> None:
    plan = parse_download(VIDEO, media_id="62NzWRrpPXm7o", media_type=MediaType.VIDEO)
    (only,) = plan.files
    assert only.url == "https://cdn.example/src.mp4?s"
    assert only.head_url == "https://cdn.example/src.mp4?s&head"
    assert only.filename == "GX010042.MP4"
    assert only.content_type == "video/mp4"
    assert "proxy" not in only.url


def test_a_chaptered_video_keeps_each_source_item_and_skips_concat() -> None:
    payload = {
        "filename": "GX010042.MP4",
        "_embedded": {
            "files": [],
            "variations": [
                link("https://c/concat", label="concat"),
                link("https://c/s2", label="source", item_number=2),
                link("https://c/s1", label="source", item_number=1),
                link("https://c/s3", label="source", item_number=3),
            ],
        },
    }
    plan = parse_download(payload, media_id="62NzWRrpPXm7o", media_type=MediaType.VIDEO)
    assert [f.url for f in plan.files] == ["https://c/s1", "https://c/s2", "https://c/s3"]
    assert [f.filename for f in plan.files] == ["GX010042_01.MP4", "GX010042_02.MP4", "GX010042_03.MP4"]
    assert len({f.filename for f in plan.files}) == 3


def test_a_burst_archives_every_photo_not_the_cover() -> None:
    payload = {
        "filename": "G0010001.JPG",
        "_embedded": {
            "files": [link(f"https://c/p{i}", item_number=i) for i in (1, 2, 3)],
            "variations": [link("https://c/cover", label="source")],
        },
    }
    plan = parse_download(payload, media_id="62NzWRrpPXm7o", media_type=MediaType.BURST)
    assert [f.url for f in plan.files] == ["https://c/p1", "https://c/p2", "https://c/p3"]
    assert plan.files[0].content_type == "image/jpeg"


def test_an_edit_uses_baked_source_and_no_original_is_an_error() -> None:
    edit = {"filename": "edit.mp4", "_embedded": {"variations": [link("https://c/b", label="baked_source")]}}
    assert parse_download(edit, media_id="abcdefabcdef", media_type=MediaType.VIDEO).files[0].url == "https://c/b"
    proxies_only = {
        "_embedded": {"files": [link("https://c/p")], "variations": [link("https://c/m", label="mp4_low")]}
    }
    with pytest.raises(ProviderResponseError, match="no original"):
        parse_download(proxies_only, media_id="abcdefabcdef", media_type=MediaType.VIDEO)


def test_download_links_must_be_http_urls() -> None:
    bad = {"_embedded": {"variations": [{"label": "source", "url": "file:///etc/passwd"}]}}
    with pytest.raises(ProviderResponseError, match="url"):
        parse_download(bad, media_id="abcdefabcdef", media_type=MediaType.VIDEO)


def test_token_answer_errors_never_echo_the_body() -> None:
    with pytest.raises(ProviderResponseError) as caught:
        parse_token_answer({"refresh_token": "rt-should-not-leak"}, 200)
    assert "rt-should-not-leak" not in str(caught.value)
    assert parse_token_answer({"access_token": "a", "expires_in": 3600, "resource_owner_id": 7}, 200) == (
        "a",
        3600.0,
        None,
        "7",
    )


@pytest.mark.parametrize(
    "bad_id", ["", "../etc", "abc/def123", "id with space", "x" * 65, "ab", "é" * 10, "a%2e%2e"]
)
def test_media_ids_outside_the_alphabet_are_refused(bad_id: str) -> None:
    from pipeline.providers.gopro.provider import GoProProvider

    provider = GoProProvider.__new__(GoProProvider)
    with pytest.raises(InvalidMediaId):
        provider.validate_media_id(bad_id)
    assert provider.validate_media_id("62NzWRrpPXm7o") == "62NzWRrpPXm7o"
    assert provider.validate_media_id("0123456789abcdef01234567") == "0123456789abcdef01234567"


def test_fixtures_are_json_serialisable() -> None:
    json.dumps(VIDEO)


def test_sidecar_facts_are_read_from_the_listing() -> None:
    item = parse_medium(
        medium(
            camera_model="HERO11 Black",
            content_title="Morning surf",
            source_duration="61500",
            width=3840,
            height=2160,
            moments_count=2,
        )
    )
    assert (item.camera_model, item.title, item.duration_s) == ("HERO11 Black", "Morning surf", 61.5)
    assert (item.width, item.height, item.moments_count) == (3840, 2160, 2)
    assert item.sidecar_facts()["uploaded_at"] == "2024-07-15T10:00:00Z"


@pytest.mark.parametrize(
    "overrides",
    [
        {"source_duration": "-5"},
        {"source_duration": "ten minutes"},
        {"source_duration": 10**13},
        {"width": 0, "height": -1},
        {"width": "wide", "height": [1]},
        {"moments_count": -1},
        {"moments_count": True},
        {"camera_model": 7, "content_title": {"x": 1}},
    ],
)
def test_an_absurd_sidecar_fact_reads_as_null_and_never_skips_the_medium(overrides: dict[str, Any]) -> None:
    item = parse_medium(medium(**overrides))
    assert item.media_id == "62NzWRrpPXm7o"
    facts = item.sidecar_facts()
    for key in overrides:
        name = {"source_duration": "duration_s", "content_title": "title"}.get(key, key)
        assert facts[name] is None, key
    assert parse_search_page(page([medium(**overrides)]), requested_page=1).items  # the page keeps it


def test_moments_are_read_leniently() -> None:
    answer = {"_embedded": {"moments": [{"id": "m1", "time": 1500}, {"time": "x"}, "junk", {"id": 7}]}}
    moments = parse_moments(answer)
    assert [(m.moment_id, m.time_ms) for m in moments] == [("m1", 1500), (None, None), ("7", None)]
    assert parse_moments([{"id": "a", "time": 1}])[0].time_ms == 1
    with pytest.raises(ProviderResponseError, match="moments"):
        parse_moments({"_embedded": {}})
