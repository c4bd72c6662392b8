"""The GoPro provider against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devtools.gopro_simulator import KB, GoProSimulator, ListingFault, MediaType, SimMedia, SimulatorConfig
from pipeline.config import EnvVar, Settings
from pipeline.credentials.factory import token_manager_for
from pipeline.credentials.model import ProviderCredentials
from pipeline.providers.base import MediaType as PipelineMediaType
from pipeline.providers.errors import AuthError, MediaNotFound, ProviderResponseError, ProviderUnavailable
from pipeline.providers.gopro.config import GoProEnv
from pipeline.providers.gopro.provider import GoProProvider, build

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def video(media_id: str, day: int, **extra: object) -> SimMedia:
    when = datetime(2025, 1, day, 12, 0, tzinfo=UTC)
    return SimMedia(id=media_id, size=20 * KB, captured_at=when, created_at=when, **extra)  # type: ignore[arg-type]


def provider_for(sim: GoProSimulator, slept: list[float] | None = None, **env: str) -> GoProProvider:
    environ = {**sim.env(), EnvVar.RETRY_MAX_ATTEMPTS: "3", **env}
    settings = Settings.from_env(environ)
    sleep = slept.append if slept is not None else (lambda _s: None)
    return build(settings, token_manager_for("gopro"), sleep=sleep)


def library_ids(sim: GoProSimulator) -> list[str]:
    return sorted(m.id for m in sim.library)


def test_lists_every_medium_over_several_pages(gopro_sim) -> None:
    sim = gopro_sim(videos=25, photos=0, video_size=10 * KB, seed=3)
    provider = provider_for(sim, **{EnvVar.LIST_PAGE_SIZE: "10"})
    items = list(provider.list_media())
    assert sorted(i.media_id for i in items) == library_ids(sim)
    pages = sim.requests_to("search")
    assert len(pages) == 3
    assert [r.query["page"] for r in pages] == [["1"], ["2"], ["3"]]
    assert all(r.query["per_page"] == ["10"] for r in pages)


def test_a_repeated_item_across_pages_is_listed_once(gopro_sim) -> None:
    sim = gopro_sim(videos=12, photos=0, video_size=10 * KB, seed=4)
    sim.faults.set_repeat_last_item(True)
    items = list(provider_for(sim, **{EnvVar.LIST_PAGE_SIZE: "5"}).list_media())
    ids = [i.media_id for i in items]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == library_ids(sim)


def test_an_expired_access_token_is_refreshed_once_and_the_call_retried(gopro_sim) -> None:
    sim = gopro_sim(videos=3, photos=0, video_size=10 * KB)
    provider = provider_for(sim)
    assert len(list(provider.list_media())) == 3
    grants_before = len(sim.requests_to("token"))
    sim.faults.expire_access_tokens()
    assert len(list(provider.list_media())) == 3
    refreshes = sim.requests_to("token")[grants_before:]
    assert [r.grant_type for r in refreshes] == ["refresh_token"]
    assert [r.status for r in sim.requests_to("search")].count(401) == 1


def test_retry_after_is_honoured_without_waiting(gopro_sim) -> None:
    sim = gopro_sim(videos=2, photos=0, video_size=10 * KB)
    slept: list[float] = []
    provider = provider_for(sim, slept, **{EnvVar.RETRY_BASE_DELAY: "0.01", EnvVar.RETRY_MAX_DELAY: "0.02"})
    provider.ensure_authenticated()
    sim.faults.rate_limit(count=2, retry_after=7, endpoint="search")
    assert len(list(provider.list_media())) == 2
    assert slept == [7.0, 7.0]
    assert [r.status for r in sim.requests_to("search")] == [429, 429, 200]


def test_server_errors_are_retried_then_given_up(gopro_sim) -> None:
    sim = gopro_sim(videos=2, photos=0, video_size=10 * KB)
    slept: list[float] = []
    provider = provider_for(sim, slept)
    provider.ensure_authenticated()
    sim.faults.server_errors(count=2, status=503, endpoint="search")
    assert len(list(provider.list_media())) == 2
    sim.clear_requests()
    sim.faults.server_errors(count=None, status=502, endpoint="search")
    with pytest.raises(ProviderUnavailable, match="HTTP 502"):
        list(provider.list_media())
    assert len(sim.requests_to("search")) == 3  # RETRY_MAX_ATTEMPTS
    assert len(slept) == 2 + 2


@pytest.mark.parametrize(
    "kind", [ListingFault.HTML_502, ListingFault.TRUNCATED_JSON, ListingFault.EMBEDDED_ERRORS]
)
def test_a_broken_page_raises_a_typed_error_and_keeps_what_was_listed(gopro_sim, kind: ListingFault) -> None:
    sim = gopro_sim(videos=9, photos=0, video_size=10 * KB, seed=5)
    provider = provider_for(sim, **{EnvVar.LIST_PAGE_SIZE: "3"})
    provider.ensure_authenticated()
    sim.faults.malformed_listing(kind, count=None, page=2)
    listed: list[str] = []

    def drain() -> None:
        listed.extend(item.media_id for item in provider.list_media())

    with pytest.raises((ProviderResponseError, ProviderUnavailable)) as caught:
        drain()
    assert len(listed) == 3  # page 1 was yielded before the fault and is not lost
    error = caught.value
    if isinstance(error, ProviderResponseError):
        assert error.status is not None
        assert error.snippet


def test_an_empty_page_in_the_middle_is_asked_again_then_yielded_short_and_the_walk_goes_on(gopro_sim) -> None:
    sim = gopro_sim(videos=9, photos=0, video_size=10 * KB, seed=5)
    slept: list[float] = []
    provider = provider_for(sim, slept, **{EnvVar.LIST_PAGE_SIZE: "3"})
    provider.ensure_authenticated()
    sim.faults.malformed_listing(ListingFault.EMPTY_PAGE, count=None, page=2)
    pages = list(provider.iter_pages())
    assert [(p.page, len(p.items), p.short) for p in pages] == [(1, 3, False), (2, 0, True), (3, 3, False)]
    assert [r.query["page"] for r in sim.requests_to("search")] == [["1"], ["2"], ["2"], ["2"], ["3"]]
    assert slept == [1.0, 2.0]  # RETRY_BASE_DELAY, doubled


@pytest.mark.parametrize("kind", [ListingFault.MISSING_FIELDS, ListingFault.WRONG_TYPES])
def test_an_unreadable_entry_is_skipped_and_reported_not_fatal(gopro_sim, kind: ListingFault) -> None:
    sim = gopro_sim(videos=9, photos=0, video_size=10 * KB, seed=5)
    provider = provider_for(sim, **{EnvVar.LIST_PAGE_SIZE: "3"})
    provider.ensure_authenticated()
    sim.faults.malformed_listing(kind, count=None, page=2)
    pages = list(provider.iter_pages())
    assert [p.page for p in pages] == [1, 2, 3]
    (bad,) = [p for p in pages if p.skipped]
    assert bad.page == 2
    listed = {item.media_id for page in pages for item in page.items}
    assert len(listed) + len(bad.skipped) == 9


@pytest.mark.parametrize("kind", [ListingFault.TRUNCATED_JSON, ListingFault.EMBEDDED_ERRORS])
def test_a_page_broken_in_passing_is_fetched_again(gopro_sim, kind: ListingFault) -> None:
    sim = gopro_sim(videos=6, photos=0, video_size=10 * KB, seed=5)
    slept: list[float] = []
    provider = provider_for(sim, slept, **{EnvVar.LIST_PAGE_SIZE: "3"})
    provider.ensure_authenticated()
    sim.faults.malformed_listing(kind, count=1, page=2)
    assert len(list(provider.list_media())) == 6
    assert [r.query["page"] for r in sim.requests_to("search")] == [["1"], ["2"], ["2"]]
    assert len(slept) == 1


def test_the_originals_of_a_chaptered_video_are_archived_not_the_proxies(gopro_sim) -> None:
    chaptered = video("0123456789abcdef01234567", 1, items=3, item_sizes=(30 * KB, 20 * KB, 10 * KB))
    sim = gopro_sim(SimulatorConfig(media=[chaptered]))
    plan = provider_for(sim).resolve_download(chaptered.id)
    assert [f.item_number for f in plan.files] == [1, 2, 3]
    assert len({f.filename for f in plan.files}) == 3
    for source in plan.files:
        body = requests.get(source.url, timeout=10).content
        assert hashlib.sha256(body).hexdigest() == sim.source_sha256(chaptered.id, item=source.item_number)
        assert hashlib.sha256(body).hexdigest() != sim.content_sha256(chaptered.id, "proxy", item=1)
        assert requests.head(source.head_url, timeout=10).headers["Content-Length"] == str(len(body))


def test_a_burst_archives_each_photo(gopro_sim) -> None:
    burst = SimMedia(id="fedcba9876543210fedcba98", type=MediaType.BURST, items=4, size=5 * KB)
    sim = gopro_sim(SimulatorConfig(media=[burst]))
    plan = provider_for(sim).resolve_download(burst.id, media_type=PipelineMediaType.BURST)
    assert len(plan.files) == 4
    for source in plan.files:
        body = requests.get(source.url, timeout=10).content
        assert hashlib.sha256(body).hexdigest() == sim.source_sha256(burst.id, item=source.item_number)


def test_a_deleted_medium_is_not_found(gopro_sim) -> None:
    sim = gopro_sim(SimulatorConfig(media=[video("62NzWRrpPXm7o", 2)]))
    sim.delete_media("62NzWRrpPXm7o")
    with pytest.raises(MediaNotFound):
        provider_for(sim).resolve_download("62NzWRrpPXm7o")


def test_a_pasted_access_token_works_then_asks_for_a_new_sign_in(gopro_sim) -> None:
    sim = gopro_sim(videos=2, photos=0, video_size=10 * KB)
    settings = Settings.from_env(
        {
            GoProEnv.API_URL: sim.base_url,
            GoProEnv.AUTH_URL: sim.base_url,
            GoProEnv.ACCESS_TOKEN: sim.issue_access_token(),
        }
    )
    provider = build(settings, token_manager_for("gopro"), sleep=lambda _s: None)
    assert len(list(provider.list_media())) == 2
    sim.faults.expire_access_tokens()
    with pytest.raises(AuthError) as caught:
        list(provider.list_media())
    assert caught.value.reauth_required
    assert sim.requests_to("token") == []  # nothing to refresh with: no pointless call


def test_a_blacklisted_refresh_token_alerts_instead_of_looping(gopro_sim) -> None:
    sim = gopro_sim(videos=2, photos=0, video_size=10 * KB)
    provider = provider_for(sim)
    provider.ensure_authenticated()
    sim.faults.blacklist_refresh_token()
    sim.faults.expire_access_tokens()
    before = len(sim.requests_to("token"))
    with pytest.raises(AuthError) as caught:
        list(provider.list_media())
    assert caught.value.reauth_required
    assert len(sim.requests_to("token")) - before == 1


def test_five_downloaders_refresh_through_secrets_manager_exactly_once(gopro_sim, aws, monkeypatch) -> None:
    """Five workers (own providers, as five Lambda containers) meet one expired token: one refresh, one winner."""
    from pipeline.aws_clients import clear_client_cache
    from pipeline.state import ensure_table

    sim = gopro_sim(videos=2, photos=0, video_size=10 * KB)
    settings = Settings.from_env(
        {
            GoProEnv.API_URL: sim.base_url,
            GoProEnv.AUTH_URL: sim.base_url,
            "AWS_ENDPOINT_URL": aws.endpoint_url,
        }
    )
    clear_client_cache()
    ensure_table(aws.client("dynamodb"), settings.table_name)
    creds = sim.credentials
    initial = ProviderCredentials(
        access_token=creds.access_token,
        refresh_token=creds.refresh_token,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
    )
    secrets = aws.client("secretsmanager")
    secrets.create_secret(Name=settings.credentials_secret_id, SecretString=initial.to_json())
    providers = [build(settings, token_manager_for("gopro"), sleep=lambda _s: None) for _ in range(5)]
    for provider in providers:
        provider.ensure_authenticated()
    sim.faults.expire_access_tokens()
    sim.clear_requests()
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def work(provider: GoProProvider) -> None:
        barrier.wait()
        try:
            assert len(list(provider.list_media())) == 2
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert [r.grant_type for r in sim.requests_to("token")] == ["refresh_token"]
    stored = ProviderCredentials.from_json(
        secrets.get_secret_value(SecretId=settings.credentials_secret_id)["SecretString"]
    )
    assert stored.access_token != creds.access_token
    assert stored.access_token == sim.credentials.access_token
    clear_client_cache()


def list_media_cli(sim: GoProSimulator, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline list-media --json` in a clean environment pointed at the simulator."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GOPRO_", "AWS_"))}
    environ.update(sim.env())
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "list-media", "--json"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_list_media_json_prints_exactly_the_library(gopro_sim) -> None:
    sim = gopro_sim(videos=7, photos=3, video_size=10 * KB, seed=9)
    done = list_media_cli(sim)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["media_id"] for r in rows) == library_ids(sim)
    by_id = {m.id: m for m in sim.library}
    for row in rows:
        medium = by_id[row["media_id"]]
        assert row["provider"] == "gopro"
        assert set(row) == {"provider", "media_id", "filename", "type", "size", "captured_at"}
        assert row["size"] == medium.listed_file_size
        expected_name = medium.filename or f"{medium.id}.{medium.file_extension}"
        assert row["filename"] == expected_name
    assert sim.credentials.refresh_token not in done.stderr + done.stdout
    assert sim.credentials.access_token not in done.stderr + done.stdout


def test_cli_says_clearly_when_credentials_are_refused(gopro_sim) -> None:
    sim = gopro_sim(videos=1, photos=0, video_size=10 * KB)
    done = list_media_cli(sim, GOPRO_CLIENT_SECRET="wrong-secret-value")
    assert done.returncode == 6  # GoPro credentials missing or refused (docs/operations.md, "Exit codes")
    assert "authentication failed" in done.stderr
    assert "wrong-secret-value" not in done.stderr
    assert done.stdout == ""


def test_newer_than_asks_for_a_created_range_with_an_explicit_end(gopro_sim) -> None:
    media = [video(f"dd{day:022x}", day) for day in range(1, 21)]  # created on 1..20 January, 12:00
    sim = gopro_sim(SimulatorConfig(media=media))
    provider = provider_for(sim, **{EnvVar.LIST_PAGE_SIZE: "5"})
    bound = datetime(2025, 1, 13, 12, 0, 0, 250_000, tzinfo=UTC)
    end = datetime(2025, 1, 18, 11, 59, 59, 500_000, tzinfo=UTC)
    pages = list(provider.iter_pages(newer_than=bound, until=end))
    newer = sorted(item.media_id for page in pages for item in page.items)
    assert newer == sorted(f"dd{day:022x}" for day in range(14, 18))
    # The range is written to the second, both ends widened (the server's ends are inclusive): days 13..18 come
    # back, two pages of 5, and the exact bounds here drop days 13 and 18.
    requests = sim.requests_to("search")
    assert [r.query["created_range"] for r in requests] == [["2025-01-13T12:00:00Z,2025-01-18T12:00:00Z"]] * 2
    assert pages[0].total_items == 6
    assert len(list(provider.list_media())) == 20  # no bound: everything, no range asked for
    assert "created_range" not in sim.requests_to("search")[-1].query


def test_a_range_the_service_ignores_is_still_applied_and_the_walk_stops_early(gopro_sim) -> None:
    media = [video(f"dd{day:022x}", day) for day in range(1, 21)]
    sim = gopro_sim(SimulatorConfig(media=media, honour_ranges=False))
    provider = provider_for(sim, **{EnvVar.LIST_PAGE_SIZE: "5"})
    bound = datetime(2025, 1, 13, 12, 0, tzinfo=UTC)
    pages = list(provider.iter_pages(newer_than=bound, until=datetime(2025, 2, 1, tzinfo=UTC)))
    newer = sorted(item.media_id for page in pages for item in page.items)
    assert newer == sorted(f"dd{day:022x}" for day in range(14, 21))
    # Newest first: page 1 holds days 20..16, page 2 days 15..11 (the bound falls inside), page 3 is all older.
    assert len(sim.requests_to("search")) == 3
    assert pages[-1].total_pages == 3
    assert pages[-1].total_items is None  # no shortfall check on a cut walk
