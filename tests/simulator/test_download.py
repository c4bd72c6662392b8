"""`GET /media/{id}/download` descriptors and their pre-signed links, shaped as /work/shared/gopro-api.md says."""

from __future__ import annotations

import hashlib
import string
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devtools.gopro_simulator import GoProSimulator, MediaType, SimMedia
from tests.fixtures.simulator import SimulatorFactory
from tests.simulator.helpers import TIMEOUT, api_headers, descriptor, entries, source_url

pytestmark = pytest.mark.integration

VIDEO = SimMedia(id="a1" * 12, type=MediaType.VIDEO, size=300_000, filename="GX010042.MP4")
CHAPTERED = SimMedia(id="b2" * 12, type=MediaType.VIDEO, item_sizes=(200_000, 200_000, 50_000))
BURST = SimMedia(id="c3" * 12, type=MediaType.BURST, size=20_000, items=4)
TIMELAPSE = SimMedia(id="d4" * 12, type=MediaType.TIMELAPSE, size=10_000, items=3)
PHOTO = SimMedia(id="62NzWRrpPXm7o", type=MediaType.PHOTO, size=30_000, filename="")
TLV = SimMedia(id="e5" * 12, type=MediaType.TIMELAPSE_VIDEO, size=40_000)


@pytest.fixture
def sim(gopro_sim: SimulatorFactory) -> GoProSimulator:
    return gopro_sim(media=[VIDEO, CHAPTERED, BURST, TIMELAPSE, PHOTO, TLV])


def fetch(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=TIMEOUT)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_entry_has_signed_url_and_head(sim: GoProSimulator) -> None:
    body = descriptor(sim, VIDEO.id).json()
    assert body["filename"] == "GX010042.MP4"
    assert set(body["_embedded"]) == {"files", "variations", "sprites", "sidecar_files"}
    for section in body["_embedded"].values():
        for entry in section:
            for key in ("url", "head"):
                query = parse_qs(urlsplit(entry[key]).query)
                assert int(query["Expires"][0]) == int(sim.now()) + 3600  # CloudFront canned policy
                assert query["Key-Pair-Id"] == [sim.key_pair_id]
                assert set(query["Signature"][0]) <= set(string.ascii_letters + string.digits + "-_~")
            assert entry["url"] != entry["head"]


def test_video_files_are_proxies_and_source_variation_is_the_original(sim: GoProSimulator) -> None:
    body = descriptor(sim, VIDEO.id).json()
    files = entries(body, "files")
    assert len(files) == 1
    assert {"camera_position", "item_number", "width", "height", "orientation", "transforms"} <= files[0].keys()
    proxy = fetch(files[0]["url"]).content
    sources = entries(body, "variations", "source")
    assert len(sources) == 1
    assert {"label", "quality", "type", "width", "height", "transforms"} <= sources[0].keys()
    assert sources[0]["type"] == "mp4"
    original = fetch(sources[0]["url"]).content
    assert sha(original) == sim.source_sha256(VIDEO.id)
    assert len(original) == VIDEO.size
    assert len(proxy) < len(original)
    assert sha(proxy) != sim.source_sha256(VIDEO.id)
    labels = {v["label"] for v in entries(body, "variations")}
    assert {"source", "high_res_proxy_mp4", "mp4_low"} <= labels
    assert "concat" not in labels
    assert entries(body, "sprites")
    assert entries(body, "sidecar_files")[0]["type"] == "zip"


def test_chaptered_video_has_one_source_per_item_plus_concat(sim: GoProSimulator) -> None:
    body = descriptor(sim, CHAPTERED.id).json()
    sources = entries(body, "variations", "source")
    assert sorted(v["item_number"] for v in sources) == [1, 2, 3]
    for variation in sources:
        data = fetch(variation["url"]).content
        assert sha(data) == sim.source_sha256(CHAPTERED.id, variation["item_number"])
    files = entries(body, "files")
    assert [f["item_number"] for f in files] == [1]  # one proxy of the whole recording, never the chapters
    assert sha(fetch(files[0]["url"]).content) != sim.source_sha256(CHAPTERED.id, 1)
    concat = entries(body, "variations", "concat")
    assert len(concat) == 1
    head = requests.head(concat[0]["head"], timeout=TIMEOUT)
    assert int(head.headers["Content-Length"]) == CHAPTERED.total_size


@pytest.mark.parametrize("medium", [BURST, TIMELAPSE], ids=["burst", "timelapse"])
def test_multi_photo_files_are_the_originals_and_source_is_only_a_cover(
    sim: GoProSimulator, medium: SimMedia
) -> None:
    body = descriptor(sim, medium.id).json()
    files = entries(body, "files")
    assert [f["item_number"] for f in files] == list(range(1, medium.items + 1))
    for entry in files:
        assert fetch(entry["url"]).content == sim.source_bytes(medium.id, entry["item_number"])
    sources = entries(body, "variations", "source")
    assert len(sources) == 1
    cover = fetch(sources[0]["url"]).content
    assert all(cover != sim.source_bytes(medium.id, item) for item in range(1, medium.items + 1))
    assert sources[0]["type"] == "jpg"


def test_photo_source_variation_is_the_original(sim: GoProSimulator) -> None:
    body = descriptor(sim, PHOTO.id).json()
    assert body["filename"] == ""
    sources = entries(body, "variations", "source")
    assert len(sources) == 1
    assert fetch(sources[0]["url"]).content == sim.source_bytes(PHOTO.id)
    assert fetch(entries(body, "files")[0]["url"]).content == sim.source_bytes(PHOTO.id)


def test_timelapse_video_is_served_like_a_video(sim: GoProSimulator) -> None:
    body = descriptor(sim, TLV.id).json()
    assert sha(fetch(entries(body, "variations", "source")[0]["url"]).content) == sim.source_sha256(TLV.id)
    assert fetch(entries(body, "files")[0]["url"]).content != sim.source_bytes(TLV.id)


def test_deleted_and_unknown_media_answer_404(sim: GoProSimulator) -> None:
    link = source_url(sim, VIDEO.id)
    sim.faults.delete_media(VIDEO.id)
    for media_id in (VIDEO.id, "0" * 24):
        answer = descriptor(sim, media_id)
        assert answer.status_code == 404
        assert answer.json()["_embedded"]["errors"][0]["code"] == 404
    assert fetch(link).status_code == 404


def test_media_still_processing_have_no_originals_until_ready(sim: GoProSimulator) -> None:
    sim.faults.set_ready_state(VIDEO.id, "transcoding")
    body = descriptor(sim, VIDEO.id).json()
    assert entries(body, "variations", "source") == []
    sim.set_ready_state(VIDEO.id, "ready")
    assert entries(descriptor(sim, VIDEO.id).json(), "variations", "source")


def test_download_needs_authentication(sim: GoProSimulator) -> None:
    answer = requests.get(f"{sim.base_url}/media/{VIDEO.id}/download", timeout=TIMEOUT)
    assert answer.status_code == 401


def test_accept_header_on_download_can_be_required(gopro_sim: SimulatorFactory) -> None:
    strict = gopro_sim(media=[VIDEO], require_accept_on_download=True)
    headers = {"Authorization": api_headers(strict)["Authorization"]}
    url = f"{strict.base_url}/media/{VIDEO.id}/download"
    assert requests.get(url, headers=headers, timeout=TIMEOUT).status_code == 406
    assert descriptor(strict, VIDEO.id).status_code == 200


def test_links_are_method_bound_like_s3(sim: GoProSimulator) -> None:
    url, head = source_url(sim, VIDEO.id), source_url(sim, VIDEO.id, method="head")
    assert requests.head(head, timeout=TIMEOUT).status_code == 200
    assert requests.head(url, timeout=TIMEOUT).status_code == 403
    wrong = fetch(head)
    assert wrong.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in wrong.content


def test_tampered_or_unsigned_links_are_403(sim: GoProSimulator) -> None:
    url = source_url(sim, VIDEO.id)
    expires = parse_qs(urlsplit(url).query)["Expires"][0]
    assert fetch(url.replace(f"Expires={expires}", f"Expires={int(expires) + 99999}")).status_code == 403
    assert fetch(url.replace(f"Key-Pair-Id={sim.key_pair_id}", "Key-Pair-Id=APKAOTHER")).status_code == 403
    assert fetch(url.replace(f"/{VIDEO.id}/", f"/{CHAPTERED.id}/")).status_code == 403
    assert fetch(url.split("?")[0]).status_code == 403


def test_expired_links_are_403_like_s3(sim: GoProSimulator) -> None:
    sim.faults.set_url_ttl(60)
    url = source_url(sim, VIDEO.id)
    assert fetch(url).status_code == 200
    sim.advance_clock(61)
    expired = fetch(url)
    assert expired.status_code == 403
    assert b"Request has expired" in expired.content
    assert fetch(source_url(sim, VIDEO.id)).status_code == 200


def test_short_link_lifetime(sim: GoProSimulator) -> None:
    sim.faults.set_url_ttl(0)
    url = source_url(sim, VIDEO.id)
    assert parse_qs(urlsplit(url).query)["Expires"] == [str(int(sim.now()))]
    assert fetch(url).status_code == 403


def test_authorization_header_on_content_is_ignored(sim: GoProSimulator) -> None:
    answer = fetch(source_url(sim, VIDEO.id), Authorization="Bearer something-else")
    assert answer.status_code == 200
    assert sha(answer.content) == sim.source_sha256(VIDEO.id)


def test_content_links_can_use_another_host_name(gopro_sim: SimulatorFactory) -> None:
    sim = gopro_sim(media=[VIDEO], content_host="localhost")
    url = source_url(sim, VIDEO.id)
    assert urlsplit(url).hostname == "localhost"
    assert urlsplit(sim.base_url).hostname == "127.0.0.1"
    assert sim.content_host == "localhost"


def test_raw_photos_come_as_raw_photo_sidecars_one_per_frame(gopro_sim: SimulatorFactory) -> None:
    photo = SimMedia(id="f6" * 12, type=MediaType.PHOTO, size=10_000, raw=True)
    burst = SimMedia(id="f7" * 12, type=MediaType.BURST, size=5_000, items=3, raw=True)
    sim = gopro_sim(media=[photo, burst, VIDEO])
    for medium in (photo, burst):
        raws = entries(descriptor(sim, medium.id).json(), "sidecar_files", "raw_photo")
        assert [(r["type"], r["item_number"]) for r in raws] == [("gpr", n) for n in range(1, medium.items + 1)]
        for raw in raws:
            data = fetch(raw["url"]).content
            assert data == sim.content_bytes(medium.id, "raw_photo", raw["item_number"])
            assert data != sim.source_bytes(medium.id, raw["item_number"])
    assert not entries(descriptor(sim, VIDEO.id).json(), "sidecar_files", "raw_photo")


def test_an_edit_has_a_baked_source_and_an_empty_descriptor_filename(gopro_sim: SimulatorFactory) -> None:
    edit = SimMedia(id="f8" * 12, type=MediaType.MULTI_CLIP_EDIT, size=20_000)
    sim = gopro_sim(media=[edit])
    body = descriptor(sim, edit.id).json()
    assert body["filename"] == ""
    baked = entries(body, "variations", "baked_source")
    assert [b["type"] for b in baked] == ["mp4"]
    assert sha(fetch(baked[0]["url"]).content) == sim.source_sha256(edit.id)
    assert edit.file_extension == "json"


def test_unavailable_entries_and_withheld_chapters(gopro_sim: SimulatorFactory) -> None:
    stale = SimMedia(id="f9" * 12, size=20_000, stale_source=True)
    partial = SimMedia(id="fa" * 12, item_sizes=(10_000, 10_000, 5_000), withheld_items=(3,))
    sim = gopro_sim(media=[stale, partial])
    sources = entries(descriptor(sim, stale.id).json(), "variations", "source")
    assert [s["available"] for s in sources] == [False, True]
    assert sha(fetch(sources[0]["url"]).content) != sim.source_sha256(stale.id)
    offered = entries(descriptor(sim, partial.id).json(), "variations", "source")
    assert [s["item_number"] for s in offered] == [1, 2]


def test_a_transient_404_answers_once_then_the_descriptor(sim: GoProSimulator) -> None:
    sim.faults.transient_not_found(count=1, media_id=VIDEO.id)
    assert descriptor(sim, VIDEO.id).status_code == 404
    assert descriptor(sim, VIDEO.id).status_code == 200
    assert [r.fault for r in sim.requests_to("download")] == ["transient_not_found", None]
