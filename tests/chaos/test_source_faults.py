"""Source faults: the GoPro simulator misbehaves the ways a CDN and a cloud API do, over real HTTP."""

from __future__ import annotations

import random

import pytest

from devtools.gopro_simulator import MIB
from devtools.local_runtime import LocalPipeline
from tests.chaos.library import library, media_id, standard, video

pytestmark = pytest.mark.integration
# Also worth running, but slower or less central: in the long set (make chaos), not in make test.
LONG = pytest.mark.chaos_long
FAMILY = "source"


def test_connections_cut_mid_body_at_random_offsets(chaos, chaos_rng: random.Random) -> None:
    run = chaos(standard(), name="connection cut mid-body (random offsets)", family=FAMILY)

    def cut(pipeline: LocalPipeline) -> None:
        for medium in pipeline.simulator.library:
            for _ in range(2):
                offset = chaos_rng.randrange(1, min(medium.size, 5 * MIB) - 1)
                pipeline.simulator.faults.cut_connection(
                    after_bytes=offset, media_id=medium.id, reset=chaos_rng.random() < 0.5
                )

    result = run.night(after_listing=cut)
    outcome = run.verify()
    assert outcome.completed == 3
    assert result.dlq_depth == 0


def test_a_429_storm_with_retry_after_is_waited_out(chaos) -> None:
    run = chaos(standard(), name="429 storm with Retry-After", family=FAMILY)

    def storm(pipeline: LocalPipeline) -> None:
        pipeline.simulator.faults.rate_limit(count=2, retry_after=1, endpoint="download")
        pipeline.simulator.faults.rate_limit(count=3, retry_after=1, endpoint="content")

    run.night(after_listing=storm)
    assert run.verify().completed == 3
    limited = [r for r in run.sim.requests if r.status == 429]
    assert len(limited) == 5


def test_5xx_bursts_from_the_api_and_the_cdn(chaos) -> None:
    run = chaos(standard(), name="5xx bursts (API and CDN)", family=FAMILY)

    def burst(pipeline: LocalPipeline) -> None:
        # Bounded so no video can spend its three receives on them: the engine tries a part three times.
        pipeline.simulator.faults.server_errors(count=2, status=503, endpoint="download")
        pipeline.simulator.faults.server_errors(count=2, status=500, endpoint="content")
        pipeline.simulator.faults.server_errors(count=2, status=502, endpoint="content")

    run.night(after_listing=burst)
    assert run.verify().completed == 3


def test_a_slow_first_byte_longer_than_the_read_timeout(chaos) -> None:
    run = chaos(
        standard(),
        name="slow first byte (beyond the read timeout)",
        family=FAMILY,
        overrides={"http_read_timeout": 1},
    )

    def slow(pipeline: LocalPipeline) -> None:
        pipeline.simulator.faults.slow_first_byte(2.0, count=2, endpoint="content")

    run.night(after_listing=slow)
    assert run.verify().completed == 3


def test_access_tokens_expire_mid_run_with_rotating_refresh_tokens(chaos) -> None:
    run = chaos(
        standard(rotate_refresh_tokens=True), name="token expiry mid-run (rotating refresh)", family=FAMILY
    )

    def grants() -> list[int]:
        return [r.status for r in run.sim.requests_to("token") if r.grant_type == "refresh_token"]

    at_listing: list[int] = []

    def expire(pipeline: LocalPipeline) -> None:
        at_listing.extend(grants())  # the lister's own refresh (it wants a token valid for 24 hours)
        pipeline.simulator.faults.expire_access_tokens()

    run.night(after_listing=expire)
    assert run.verify().completed == 3
    # Five consumers met the expired token; one refreshed it, the others adopted the new one from the secret: a
    # rotated refresh token is never used twice.
    assert grants() == [*at_listing, 200]
    assert run.sim.tokens.refresh_token in run.sim.tokens._valid_refresh


def test_the_download_url_expires_mid_transfer(chaos) -> None:
    # One part at a time: every part after the first is fetched after the links expired.
    run = chaos(
        library(video(1, 16 * MIB), video(2, 11 * MIB)),
        name="download URL expires mid-transfer",
        family=FAMILY,
        overrides={"transfer_window": 1},
    )
    s3 = run.client("s3")
    advanced: list[bool] = []

    def expire_links(params: dict, **_: object) -> None:
        if not advanced:
            advanced.append(True)
            run.sim.advance_clock(7200)  # every link handed out so far has expired, the access token too

    s3.meta.events.register("before-call.s3.UploadPart", expire_links)
    run.night()
    assert run.verify().completed == 2
    refused = {r.media_id for r in run.sim.requests_to("content") if r.status == 403}
    assert refused == {media_id(1), media_id(2)}  # both met an expired link, refreshed it, and went on


def test_a_video_deleted_between_listing_and_download(chaos) -> None:
    run = chaos(standard(), name="deleted between listing and download", family=FAMILY)
    victim = media_id(2)
    run.night(after_listing=lambda pipeline: pipeline.simulator.delete_media(victim))
    outcome = run.verify()
    assert (outcome.completed, outcome.source_deleted) == (2, 1)


@LONG
def test_a_video_deleted_mid_transfer(chaos) -> None:
    # One part at a time, so the parts after the first are fetched after the deletion.
    run = chaos(standard(), name="deleted mid-transfer", family=FAMILY, overrides={"transfer_window": 1})
    victim = media_id(1)
    s3 = run.client("s3")

    def delete(params: dict, **_: object) -> None:
        if victim in params.get("url_path", "") and victim in {m.id for m in run.sim.library}:
            run.sim.delete_media(victim)  # after part 1 was read, before it is uploaded

    s3.meta.events.register("before-call.s3.UploadPart", delete)
    run.night()
    outcome = run.verify()
    assert outcome.source_deleted == 1
    assert outcome.completed == 2


def test_a_video_still_processing_waits_for_a_later_night(chaos) -> None:
    run = chaos(
        library(video(1, 6 * MIB), video(2, 700 * 1024, ready="transcoding")),
        name="still processing at listing, ready the next night",
        family=FAMILY,
    )
    first = run.night()
    assert first.listing["enqueued"] == 1
    assert run.app.state.media.get("gopro", media_id(2)) is None  # skipped, never claimed
    run.sim.set_ready_state(media_id(2), "ready")
    run.next_night()
    assert run.verify().completed == 2


@LONG
def test_a_cdn_that_ignores_range(chaos) -> None:
    run = chaos(standard(), name="CDN ignores Range (sequential fallback)", family=FAMILY)
    run.night(after_listing=lambda pipeline: pipeline.simulator.faults.ignore_range(count=3))
    assert run.verify().completed == 3
