"""Issue 11's acceptance night: `run-local` against a simulator that answers as GoPro does, with faults on.

Short pages, one absurd medium and (once the downloads side adds it) a transient 404 switched on: two nights of
the whole local pipeline (lister, queue, downloaders, summary) archive every camera video and every chapter
byte-exact, skip and report the absurd medium, and a third night uploads nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.gopro_simulator import KB, AbsurdKind, MediaType, SimMedia, SimulatorConfig
from devtools.local_runtime import LocalPipeline
from pipeline.config import Settings
from tests.integration.test_pipeline_end_to_end import FAST, s3_objects, sha256_of

pytestmark = pytest.mark.integration

CAMERA_VIDEO_KINDS = (
    MediaType.VIDEO,
    MediaType.TIMELAPSE_VIDEO,
    MediaType.BURST_VIDEO,
    MediaType.CHAPTERED,
    MediaType.LIVESTREAM,
    MediaType.LOOPED,
    MediaType.LOOPED_VIDEO,
    MediaType.EXTERNAL_VIDEO,
    MediaType.SESSION,
)
ABSURD_ID = "ab" + "f" * 22


def library() -> list[SimMedia]:
    """One medium of each camera video kind (the Chaptered one in 3 chapters, and a plain video in 2), a burst
    (photos are off: skipped), and the medium the absurd-value fault will list with `file_size` 10**15."""
    start = datetime(2025, 4, 1, 8, 0, tzinfo=UTC)
    media = []
    for index, kind in enumerate(CAMERA_VIDEO_KINDS):
        items = 3 if kind == MediaType.CHAPTERED else 2 if index == 0 else 1
        when = start + timedelta(hours=index)
        media.append(
            SimMedia(id=f"ab{index:022x}", type=kind, size=40 * KB, items=items, captured_at=when, created_at=when)
        )
    media.append(SimMedia(id="ab" + "e" * 22, type=MediaType.BURST, items=3, size=10 * KB, created_at=start))
    media.append(SimMedia(id=ABSURD_ID, size=40 * KB, created_at=start + timedelta(days=1)))
    return media


@pytest.fixture
def local(aws: Any, gopro_sim: Any) -> Any:
    started: list[LocalPipeline] = []

    def start(config: SimulatorConfig, **overrides: Any) -> LocalPipeline:
        pipeline = LocalPipeline(
            base_settings=Settings.from_env({}),
            aws_endpoint_url=aws.endpoint_url,
            simulator=gopro_sim(config),
            retry_delay=0,
            settings_overrides={**FAST, **overrides},
        ).start()
        started.append(pipeline)
        return pipeline

    yield start
    for pipeline in started:
        pipeline.stop()


def test_two_nights_archive_every_camera_video_and_chapter_and_a_third_uploads_nothing(local) -> None:
    media = library()
    pipeline = local(SimulatorConfig(media=media), list_page_size=4, retry_base_delay=0.0)
    sim = pipeline.simulator
    # Faults, as the live service shows them: page 2 comes back short on every try of the first night (the walk
    # is incomplete), then full; one medium is listed with an impossible size on every night.
    sim.faults.short_pages(items=1, count=3, page=2)
    sim.faults.absurd_value(AbsurdKind.HUGE_SIZE, media_id=ABSURD_ID)
    # And one live medium answers 404 on its descriptor once (issue 11, point 3: a 404 is not proof of deletion):
    # it must be archived all the same, never recorded deleted.
    sim.faults.transient_not_found(count=1, media_id=media[1].id)

    first = pipeline.run()
    assert not first.listing.get("error")
    assert first.report is not None
    assert "The listing was INCOMPLETE" in (first.report_text or "")
    assert "file_size 1000000000000000 is impossible" in (first.report_text or "")

    second = pipeline.run()
    assert not second.listing.get("error")
    assert second.report is not None
    assert "INCOMPLETE" not in (second.report_text or "")
    assert f"{ABSURD_ID}: file_size 1000000000000000 is impossible" in (second.report_text or "")

    objects = s3_objects(pipeline)
    stored = {sha256_of(pipeline, key) for key in objects}
    videos = [m for m in media if m.type in CAMERA_VIDEO_KINDS and m.id != ABSURD_ID]
    wanted = {
        (m.id, m.type, item): sim.source_sha256(m.id, item) for m in videos for item in range(1, m.items + 1)
    }
    missing = sorted(name for name, digest in wanted.items() if digest not in stored)
    assert missing == []  # every camera video, every chapter, byte for byte
    expected = set(wanted.values())
    assert len(objects) == len(expected)  # and nothing else: not the burst, not the absurd medium
    assert set(objects.values()) == {1}  # the second night uploaded nothing twice

    third = pipeline.run()
    assert third.listing["enqueued"] == 0
    assert s3_objects(pipeline) == objects
