"""The http-manifest provider: the same contract as GoPro's, its manifest parsing and HTTP policy (over a real
server on 127.0.0.1), its registration without touching a handler, and keys that keep providers apart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline import resources
from pipeline.config import ConfigError, EnvVar, Settings
from pipeline.keys import object_key
from pipeline.providers import registry
from pipeline.providers.base import CloudProvider, MediaType
from pipeline.providers.errors import (
    AuthError,
    InvalidMediaId,
    MediaNotFound,
    ProviderResponseError,
    ProviderUnavailable,
)
from pipeline.providers.gopro.api import NAME as GOPRO
from pipeline.providers.http_manifest import api
from pipeline.providers.http_manifest.config import HttpManifestConfig, ManifestEnv
from pipeline.providers.http_manifest.parsing import parse_manifest
from pipeline.providers.http_manifest.provider import HttpManifestProvider, build
from tests.unit.providers.manifest_server import ManifestServer

REPO = Path(__file__).resolve().parents[3]
WHEN = "2025-01-05T10:00:00Z"


@pytest.fixture
def server() -> Iterator[ManifestServer]:
    running = ManifestServer().start()
    try:
        yield running
    finally:
        running.stop()


def provider_for(url: str, *, token: str | None = None, attempts: int = 3) -> HttpManifestProvider:
    settings = Settings.from_env({EnvVar.RETRY_MAX_ATTEMPTS: str(attempts)})
    return build(settings, HttpManifestConfig(manifest_url=url, token=token), sleep=lambda _s: None)


def medium(media_id: str, **extra: object) -> dict[str, object]:
    return {
        "id": media_id,
        "filename": f"{media_id}.mp4",
        "size": 10,
        "captured_at": WHEN,
        "url": f"/m/{media_id}.mp4",
    }


# --- parsing ---------------------------------------------------------------------------------------------------


def test_a_bare_list_and_an_object_with_next_both_parse() -> None:
    listed = parse_manifest([medium("a1")], "https://cdn.example/lib/manifest.json")
    assert [e.item.media_id for e in listed.entries] == ["a1"]
    assert listed.entries[0].url == "https://cdn.example/m/a1.mp4"  # relative to the manifest
    assert listed.next_url is None
    paged = parse_manifest(
        {"media": [medium("b2")], "next": "page-2.json"}, "https://cdn.example/lib/manifest.json"
    )
    assert paged.next_url == "https://cdn.example/lib/page-2.json"


def test_unusable_entries_are_skipped_and_reported_never_fatal() -> None:
    page = parse_manifest(
        [
            medium("good-1"),
            {"id": "../escape", "url": "https://x/y"},
            {"id": "no-url"},
            {"id": "ftp-url", "url": "ftp://x/y"},
            {"id": "bad-size", "url": "https://x/y", "size": -1},
            {"id": "bad-time", "url": "https://x/y", "captured_at": "yesterday"},
            "not an object",
            medium("good-1"),  # a repeat is listed once
        ],
        "https://cdn.example/manifest.json",
    )
    assert [e.item.media_id for e in page.entries] == ["good-1"]
    assert page.skipped == ("../escape", "no-url", "ftp-url", "bad-size", "bad-time", "#6")


def test_fields_map_onto_the_contracts_types() -> None:
    [entry] = parse_manifest(
        [{"id": "p1", "url": "https://x/photos/IMG_1.JPG", "type": "Photo", "size": None}], "https://x/"
    ).entries
    item = entry.item
    assert (item.provider, item.filename, item.media_type, item.size, item.captured_at) == (
        api.NAME,
        "IMG_1.JPG",  # no filename: the URL's last segment
        MediaType.PHOTO,
        None,
        None,
    )
    [odd] = parse_manifest([{"id": "x1", "url": "https://x/a", "type": "hologram"}], "https://x/").entries
    assert odd.item.media_type is MediaType.UNKNOWN


@pytest.mark.parametrize("payload", [{"items": []}, "text", 42, {"media": [], "next": 3}])
def test_a_manifest_of_the_wrong_shape_is_a_provider_response_error(payload: object) -> None:
    with pytest.raises(ProviderResponseError):
        parse_manifest(payload, "https://x/")


# --- the contract over HTTP -----------------------------------------------------------------------------------


def test_lists_every_page_by_following_next(server: ManifestServer) -> None:
    server.manifest("/p1.json", {"media": [medium("a1"), medium("a2")], "next": "/p2.json"})
    server.manifest("/p2.json", {"media": [medium("b1")], "next": None})
    provider = provider_for(server.url("/p1.json"))
    assert isinstance(provider, CloudProvider)
    pages = list(provider.iter_pages())
    assert [(p.page, [i.media_id for i in p.items]) for p in pages] == [(1, ["a1", "a2"]), (2, ["b1"])]
    assert [p.page for p in provider.iter_pages(start_page=2)] == [2]
    assert [i.media_id for i in provider.list_media()] == ["a1", "a2", "b1"]
    later = list(provider.iter_pages(newer_than=datetime(2025, 6, 1, tzinfo=UTC)))
    assert [i for p in later for i in p.items] == []


def test_resolves_one_download_and_describes_a_medium(server: ManifestServer) -> None:
    server.manifest("/manifest.json", [medium("clip-7")])
    provider = provider_for(server.url("/manifest.json"))
    plan = provider.resolve_download("clip-7", media_type=MediaType.VIDEO)
    [source] = plan.files
    assert source.url == server.url("/m/clip-7.mp4")
    assert (source.filename, source.content_type, source.size_hint) == ("clip-7.mp4", "video/mp4", 10)
    item = provider.describe("clip-7")
    assert item.captured_at == datetime(2025, 1, 5, 10, tzinfo=UTC)
    with pytest.raises(MediaNotFound):
        provider.describe("gone-1")


def test_ids_outside_the_alphabet_are_refused_before_any_request(server: ManifestServer) -> None:
    provider = provider_for(server.url("/manifest.json"))
    for bad in ("", "../x", "a/b", "a.b", "x" * 129, "é"):
        with pytest.raises(InvalidMediaId):
            provider.validate_media_id(bad)
        with pytest.raises(InvalidMediaId):
            provider.resolve_download(bad)
    assert server.seen == []


def test_server_errors_are_retried_and_refusals_are_auth_errors(server: ManifestServer) -> None:
    server.manifest("/manifest.json", [medium("a1")])
    server.fail_first("/manifest.json", 503, 502)
    assert [i.media_id for i in provider_for(server.url("/manifest.json")).list_media()] == ["a1"]
    server.fail_first("/manifest.json", 503, 503, 503)
    with pytest.raises(ProviderUnavailable):
        list(provider_for(server.url("/manifest.json")).list_media())
    server.fail_first("/manifest.json", 401)
    with pytest.raises(AuthError):
        list(provider_for(server.url("/manifest.json")).list_media())
    with pytest.raises(ProviderResponseError, match="HTTP 404"):
        list(provider_for(server.url("/missing.json")).list_media())


def test_links_that_loop_end_with_an_error(server: ManifestServer) -> None:
    server.manifest("/a.json", {"media": [medium("a1")], "next": "/b.json"})
    server.manifest("/b.json", {"media": [], "next": "/a.json"})
    with pytest.raises(ProviderResponseError, match="loop"):
        list(provider_for(server.url("/a.json")).iter_pages())


def test_the_bearer_token_goes_to_the_manifest_only_and_never_into_errors(server: ManifestServer) -> None:
    server.manifest("/manifest.json", [medium("a1")])
    provider = provider_for(server.url("/manifest.json"), token="manifest-token-123456")
    list(provider.list_media())
    [seen] = server.requests_to("/manifest.json")
    assert seen.headers["Authorization"] == "Bearer manifest-token-123456"
    server.fail_first("/manifest.json", 403)
    with pytest.raises(AuthError) as refused:
        list(provider.list_media())
    assert "manifest-token-123456" not in str(refused.value)
    assert "manifest-token-123456" not in repr(
        HttpManifestConfig(manifest_url="https://x/", token="manifest-token-123456")
    )


# --- registration and keys ------------------------------------------------------------------------------------


def test_it_is_registered_by_name_without_touching_a_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ManifestEnv.URL, "https://media.example/manifest.json")
    assert api.NAME in registry.names()
    assert isinstance(registry.create(api.NAME, Settings()), HttpManifestProvider)
    handlers = "".join(p.read_text() for p in (REPO / "pipeline" / "handlers").glob("*.py"))
    assert "http_manifest" not in handlers
    assert api.NAME not in handlers


def test_without_a_manifest_url_the_factory_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ManifestEnv.URL, raising=False)
    with pytest.raises(ConfigError, match=ManifestEnv.URL):
        registry.create(api.NAME, Settings())


def test_state_keys_and_s3_keys_keep_providers_apart() -> None:
    same_id = "ABC123def456"
    assert resources.media_key(GOPRO, same_id) != resources.media_key(api.NAME, same_id)
    when = datetime(2025, 1, 5, tzinfo=UTC)
    gopro_key = object_key(GOPRO, same_id, when, "clip.mp4")
    manifest_key = object_key(api.NAME, same_id, when, "clip.mp4")
    assert gopro_key == "gopro/2025/01/05/ABC123def456/clip.mp4"
    assert manifest_key == "http-manifest/2025/01/05/ABC123def456/clip.mp4"
    assert not manifest_key.startswith(f"{GOPRO}/")
