"""One contract suite that every provider passes (rclone's `fstests.Run` habit).

Each provider contributes one rig: the provider built *through the registry* (its own options read from the
environment the settings carry), over a local fake holding the same small library, plus the three ways to make
that fake misbehave (refuse our credentials, fail in passing, rate-limit). Every test below then runs against
each rig alike; adding a provider means adding one rig function to `RIGS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests

from devtools.gopro_simulator import GoProSimulator, SimMedia, SimulatorConfig
from pipeline.config import EnvVar, Settings
from pipeline.errors import SyncError, is_transient
from pipeline.providers import registry
from pipeline.providers.base import CloudProvider, MediaType
from pipeline.providers.errors import (
    AuthError,
    InvalidMediaId,
    MediaNotFound,
    ProviderUnavailable,
    RateLimited,
)
from pipeline.providers.gopro.api import NAME as GOPRO
from pipeline.providers.http_manifest.api import NAME as HTTP_MANIFEST
from pipeline.providers.http_manifest.config import ManifestEnv
from tests.unit.providers.manifest_server import ManifestServer

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Known:
    media_id: str
    filename: str
    size: int
    captured_at: datetime


LIBRARY = (
    Known("contract0001", "GX010001.MP4", 3_000, datetime(2025, 1, 3, 12, 0, tzinfo=UTC)),
    Known("contract0002", "GX010002.MP4", 5_000, datetime(2025, 1, 2, 12, 0, tzinfo=UTC)),
    Known("contract0003", "GX010003.MP4", 7_000, datetime(2025, 1, 1, 12, 0, tzinfo=UTC)),
)
MISSING_ID = "missing000000"  # in every provider's alphabet, in no library
INVALID_ID = "../escape"  # in no provider's alphabet
# Fast and bounded: two attempts, no back-off, so "fails in passing" ends quickly in a typed error.
RETRY_ENV = {EnvVar.RETRY_MAX_ATTEMPTS: "2", EnvVar.RETRY_BASE_DELAY: "0", EnvVar.RETRY_MAX_DELAY: "0"}


@dataclass
class Rig:
    provider: CloudProvider
    refuse_credentials: Callable[[], None]
    fail_in_passing: Callable[[int], None]  # the status to answer (5xx) from now on
    rate_limit: Callable[[], None]


def gopro_rig(gopro_sim: Callable[..., GoProSimulator]) -> Rig:
    sim = gopro_sim(
        SimulatorConfig(
            media=[
                SimMedia(
                    id=k.media_id,
                    filename=k.filename,
                    size=k.size,
                    captured_at=k.captured_at,
                    created_at=k.captured_at,
                )
                for k in LIBRARY
            ]
        )
    )
    settings = Settings.from_env({**sim.env(), **RETRY_ENV})

    def refuse() -> None:
        sim.faults.expire_access_tokens()
        sim.faults.blacklist_refresh_token()

    return Rig(
        provider=registry.create(GOPRO, settings),
        refuse_credentials=refuse,
        fail_in_passing=lambda status: sim.faults.server_errors(count=None, status=status),
        rate_limit=lambda: sim.faults.rate_limit(count=None, retry_after=0),
    )


def manifest_rig(server: ManifestServer) -> Rig:
    path = "/manifest.json"
    entries = []
    for k in LIBRARY:
        server.media(f"/m/{k.filename}", bytes(k.size))
        entries.append(
            {
                "id": k.media_id,
                "filename": k.filename,
                "size": k.size,
                "captured_at": k.captured_at.isoformat().replace("+00:00", "Z"),
                "url": f"/m/{k.filename}",
            }
        )
    server.manifest(path, {"media": entries})
    settings = Settings.from_env({ManifestEnv.URL: server.url(path), **RETRY_ENV})
    return Rig(
        provider=registry.create(HTTP_MANIFEST, settings),
        refuse_credentials=lambda: server.fail_first(path, *[401] * 10),
        fail_in_passing=lambda status: server.fail_first(path, *[status] * 10),
        rate_limit=lambda: server.fail_first(path, *[429] * 10),
    )


@pytest.fixture
def manifest_server() -> Iterator[ManifestServer]:
    running = ManifestServer().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=[GOPRO, HTTP_MANIFEST])
def rig(request: pytest.FixtureRequest) -> Rig:
    if request.param == GOPRO:
        return gopro_rig(request.getfixturevalue("gopro_sim"))
    return manifest_rig(request.getfixturevalue("manifest_server"))


# --- listing ---------------------------------------------------------------------------------------------------


def test_lists_the_whole_library_once(rig: Rig) -> None:
    items = list(rig.provider.list_media())
    assert sorted(i.media_id for i in items) == sorted(k.media_id for k in LIBRARY)
    by_id = {i.media_id: i for i in items}
    for known in LIBRARY:
        item = by_id[known.media_id]
        assert (item.provider, item.filename, item.size) == (rig.provider.name, known.filename, known.size)
        assert item.media_type is MediaType.VIDEO
        assert item.captured_at == known.captured_at


def test_pages_are_numbered_from_one_in_order(rig: Rig) -> None:
    numbers = [page.page for page in rig.provider.iter_pages()]
    assert numbers
    assert numbers == list(range(1, len(numbers) + 1))


def test_newer_than_leaves_older_media_out(rig: Rig) -> None:
    bound = LIBRARY[1].captured_at
    newer = {i.media_id for i in rig.provider.list_media(newer_than=bound)}
    assert newer == {k.media_id for k in LIBRARY if k.captured_at > bound}


# --- one medium ------------------------------------------------------------------------------------------------


def test_describe_knows_a_listed_medium_and_not_a_missing_one(rig: Rig) -> None:
    known = LIBRARY[0]
    item = rig.provider.describe(known.media_id)
    assert (item.provider, item.media_id, item.filename) == (rig.provider.name, known.media_id, known.filename)
    with pytest.raises(MediaNotFound) as raised:
        rig.provider.describe(MISSING_ID)
    assert raised.value.media_id == MISSING_ID
    assert not is_transient(raised.value)


def test_a_download_plan_points_at_the_original_bytes(rig: Rig) -> None:
    for known in LIBRARY:
        plan = rig.provider.resolve_download(known.media_id, media_type=MediaType.VIDEO)
        assert (plan.media_id, plan.filename) == (known.media_id, known.filename)
        assert len(plan.files) == 1
        source = plan.files[0]
        assert source.filename == known.filename
        assert source.content_type == "video/mp4"
        # Fetched as the downloader does: without the provider's credentials.
        answer = requests.get(source.url, timeout=10)
        assert answer.status_code == 200
        assert len(answer.content) == known.size


def test_missing_and_invalid_ids_are_typed(rig: Rig) -> None:
    with pytest.raises(MediaNotFound):
        rig.provider.resolve_download(MISSING_ID)
    assert rig.provider.validate_media_id(LIBRARY[0].media_id) == LIBRARY[0].media_id
    for call in (rig.provider.validate_media_id, rig.provider.resolve_download):
        with pytest.raises(InvalidMediaId):
            call(INVALID_ID)


# --- failures --------------------------------------------------------------------------------------------------


def test_refused_credentials_are_an_auth_error_no_retry_can_fix(rig: Rig) -> None:
    rig.refuse_credentials()
    with pytest.raises(AuthError) as raised:
        list(rig.provider.list_media())
    assert raised.value.reauth_required
    assert isinstance(raised.value, SyncError)
    assert not is_transient(raised.value)


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_failing_in_passing_is_transient(rig: Rig, status: int) -> None:
    rig.fail_in_passing(status)
    with pytest.raises(ProviderUnavailable) as raised:
        list(rig.provider.list_media())
    assert raised.value.status == status
    assert is_transient(raised.value)


def test_rate_limiting_is_transient(rig: Rig) -> None:
    rig.rate_limit()
    with pytest.raises(RateLimited) as raised:
        list(rig.provider.list_media())
    assert is_transient(raised.value)
