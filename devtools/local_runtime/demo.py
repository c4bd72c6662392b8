"""The `make demo` library: a dozen videos of a few MB (a chaptered recording and a BurstVideo among them), one
deleted at the source, one failing transiently.

The scenario is applied after the listing (the way it happens for real: a video deleted between the nightly
listing and its download; a connection that keeps dropping for one video until SQS retries it).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from devtools.gopro_simulator import MB, MediaType, SimMedia, SimulatorConfig
from pipeline import resources

if TYPE_CHECKING:
    from devtools.local_runtime.pipeline import LocalPipeline

log = logging.getLogger(__name__)

DELETED_ID = "5f0c1a2b3c4d5e6f70819202"
FLAKY_ID = "5f0c1a2b3c4d5e6f70819203"
# The local stack's night only: a video every delivery of which fails, so it ends in the dead-letter queue.
DEAD_LETTER_ID = "5f0c1a2b3c4d5e6f70819205"


BURST_VIDEO_ID = "5f0c1a2b3c4d5e6f70819f03"


def demo_library(videos: int = 12, video_size: int = 4 * MB, *, burst_video: bool = False) -> SimulatorConfig:
    """`videos` videos (the last one a chaptered recording in two files), a photo and a burst (skipped unless
    photos are included); `burst_video` adds a BurstVideo (a camera video kind, archived as a video), as
    `make demo` does."""
    start = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    media = []
    for index in range(videos):
        media_id = f"5f0c1a2b3c4d5e6f708192{index:02x}"
        size = video_size // 2 + (index * video_size) // max(1, videos - 1)
        chaptered = index == videos - 1  # one long recording the camera split in two files
        media.append(
            SimMedia(
                id=media_id,
                type=MediaType.VIDEO,
                size=size,
                items=2 if chaptered else 1,
                captured_at=start + timedelta(days=index * 11),
                created_at=start + timedelta(days=index * 11, hours=3),
            )
        )
    media.append(SimMedia(id="5f0c1a2b3c4d5e6f70819f01", type=MediaType.PHOTO, size=MB // 2))
    media.append(SimMedia(id="5f0c1a2b3c4d5e6f70819f02", type=MediaType.BURST, items=3, size=MB // 4))
    if burst_video:
        when = start + timedelta(days=videos * 11)
        kind = MediaType.BURST_VIDEO
        media.append(SimMedia(id=BURST_VIDEO_ID, type=kind, size=video_size, captured_at=when, created_at=when))
    return SimulatorConfig(media=media, seed=42)


def apply_scenario(pipeline: LocalPipeline) -> None:
    sim = pipeline.simulator
    if sim is None or pipeline.settings is None:
        return
    ids = {m.id for m in sim.library}
    if DELETED_ID in ids:
        sim.delete_media(DELETED_ID)
        log.info("demo: %s deleted at the source after the listing", DELETED_ID)
    if FLAKY_ID in ids:
        # As many cuts as the transfer engine retries a part: its first delivery gives up, SQS redelivers it.
        sim.faults.cut_connection(
            after_bytes=256 * 1024, count=pipeline.settings.retry_max_attempts, media_id=FLAKY_ID
        )
        log.info("demo: downloads of %s will be cut %d times", FLAKY_ID, pipeline.settings.retry_max_attempts)


def apply_dead_letter(pipeline: LocalPipeline) -> None:
    """Cuts every download of DEAD_LETTER_ID for as many deliveries as SQS makes before the DLQ, and no more: it
    ends FAILED with its message in the dead-letter queue, and a redrive afterwards succeeds."""
    sim = pipeline.simulator
    if sim is None or pipeline.settings is None or DEAD_LETTER_ID not in {m.id for m in sim.library}:
        return
    cuts = resources.MAX_RECEIVE_COUNT * pipeline.settings.retry_max_attempts
    sim.faults.cut_connection(after_bytes=256 * 1024, count=cuts, media_id=DEAD_LETTER_ID)
    log.info("local stack: the first %d downloads of %s will be cut (it goes to the DLQ)", cuts, DEAD_LETTER_ID)
