"""Downloads as GoPro answers (issue 11, point 3), each over the simulator, moto and the local runtime.

Every test names the rule it holds; each fails when that rule's handling is taken out of the pipeline (see the
docstrings for what the old behaviour did).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from devtools.gopro_simulator import KB, MediaType, SimMedia, SimulatorConfig
from devtools.local_runtime import LocalPipeline
from pipeline.config import Settings
from pipeline.keys import object_key
from pipeline.messages import DownloadMessage
from pipeline.providers.gopro.config import GoProEnv
from pipeline.state import NOTE_NOT_FOUND, NOTE_SOURCE_DELETED, MediaStatus
from tests.integration.test_pipeline_end_to_end import FAST, MIB, s3_objects, sha256_of

pytestmark = pytest.mark.integration


@pytest.fixture
def local(aws, gopro_sim):
    started: list[LocalPipeline] = []

    def start(media: list[SimMedia], *, env: dict[str, str] | None = None, **overrides: Any) -> LocalPipeline:
        sim = gopro_sim(SimulatorConfig(media=media, seed=3))
        pipeline = LocalPipeline(
            base_settings=Settings.from_env(env or {}),
            aws_endpoint_url=aws.endpoint_url,
            simulator=sim,
            retry_delay=0,
            settings_overrides={**FAST, **overrides},
        ).start()
        started.append(pipeline)
        return pipeline

    yield start
    for pipeline in started:
        pipeline.stop()


def key_of(pipeline: LocalPipeline, medium: SimMedia, filename: str) -> str:
    return object_key("gopro", medium.id, medium.captured_at, filename)


def stored_sha(pipeline: LocalPipeline, key: str) -> str:
    return sha256_of(pipeline, key)


def record(pipeline: LocalPipeline, medium: SimMedia) -> Any:
    assert pipeline.app is not None
    return pipeline.app.state.media.get("gopro", medium.id)


def restore(pipeline: LocalPipeline, medium_id: str, **changes: Any) -> None:
    """Put a medium back (undeleted, or with new facts), as GoPro does once processing ends or on a restore."""
    sim = pipeline.simulator
    medium = sim.media(medium_id)
    medium.deleted = False
    for name, value in changes.items():
        setattr(medium, name, value)
    sim.add_media(medium)


# --- chapters -------------------------------------------------------------------------------------------------


CHAPTERED = SimMedia(
    id="c1" * 12, type=MediaType.VIDEO, item_sizes=(300 * KB, 300 * KB, 120 * KB), filename="GX010042.MP4"
)


def test_every_chapter_of_a_recording_with_one_proxy_is_archived_byte_exact(local) -> None:
    """`files` holds one proxy: an archiver that takes `files` keeps a low-resolution copy of chapter 1 only."""
    pipeline = local([CHAPTERED])
    sim = pipeline.simulator
    assert pipeline.run().ok
    assert record(pipeline, CHAPTERED).status is MediaStatus.COMPLETED
    s3 = pipeline.client("s3")
    for item in (1, 2, 3):
        key = key_of(pipeline, CHAPTERED, f"GX010042_0{item}.MP4")
        assert stored_sha(pipeline, key) == sim.source_sha256(CHAPTERED.id, item)
        # Served as binary/octet-stream (CloudFront): the stored type comes from the name.
        assert s3.head_object(Bucket=pipeline.settings.bucket_name, Key=key)["ContentType"] == "video/mp4"
    assert len(s3_objects(pipeline)) == 3
    assert not [r for r in sim.requests_to("content") if "/proxy/" in r.path or "/concat/" in r.path]


def test_a_recording_missing_a_chapter_is_never_completed_and_a_later_night_archives_it(local) -> None:
    """The descriptor offers 2 of the 3 listed chapters: without the `item_count` check the medium was
    COMPLETED with two chapters, and the third was lost for good."""
    medium = replace(CHAPTERED, withheld_items=(3,))
    pipeline = local([medium], full_reconcile_days=0)
    first = pipeline.run()
    state = record(pipeline, medium)
    assert state.status is MediaStatus.FAILED
    assert "incomplete" in (state.last_error or "")
    assert first.report is not None
    assert first.report["failed"] == 1
    assert s3_objects(pipeline) == {}  # nothing half-archived
    restore(pipeline, medium.id, withheld_items=())
    second = pipeline.run()
    assert second.listing["enqueued"] == 0  # FAILED: its message is in the DLQ, the operator's to redrive
    redrive(pipeline)
    assert pipeline.drain(timeout=60)[0]
    assert record(pipeline, medium).status is MediaStatus.COMPLETED
    for item in (1, 2, 3):
        key = key_of(pipeline, medium, f"GX010042_0{item}.MP4")
        assert stored_sha(pipeline, key) == pipeline.simulator.source_sha256(medium.id, item)


def redrive(pipeline: LocalPipeline) -> None:
    """What `scripts/redrive_dlq.py` does: every DLQ message back to the queue, its record PENDING."""
    sqs, settings = pipeline.client("sqs"), pipeline.settings
    assert settings is not None
    while found := sqs.receive_message(QueueUrl=settings.dlq_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in found:
            body = message["Body"]
            media_id = json.loads(body)["media_id"]
            assert pipeline.app is not None
            assert pipeline.app.state.media.reset_to_pending("gopro", media_id)
            sqs.send_message(QueueUrl=settings.queue_url, MessageBody=body)
            sqs.delete_message(QueueUrl=settings.dlq_url, ReceiptHandle=message["ReceiptHandle"])


# --- names ----------------------------------------------------------------------------------------------------


def test_empty_descriptor_filenames_keep_the_listed_name_or_the_id_with_its_extension(local) -> None:
    """GoPro sends `filename: ""` in some descriptors: the key was the bare media id, without an extension."""
    named = SimMedia(id="d1" * 12, size=200 * KB, filename="GX010077.MP4", descriptor_filename="")
    nameless = SimMedia(id="d2" * 12, size=200 * KB, filename="", descriptor_filename="")
    pipeline = local([named, nameless])
    assert pipeline.run().ok
    keys = set(s3_objects(pipeline))
    assert keys == {key_of(pipeline, named, "GX010077.MP4"), key_of(pipeline, nameless, f"{nameless.id}.mp4")}
    for medium, key in ((named, "GX010077.MP4"), (nameless, f"{nameless.id}.mp4")):
        stored = stored_sha(pipeline, key_of(pipeline, medium, key))
        assert stored == pipeline.simulator.source_sha256(medium.id)


def test_an_edit_is_archived_from_baked_source_with_its_renditions_extension(local) -> None:
    """An edit is listed with `file_extension: json` and an empty descriptor name: it was stored as `.json`."""
    edit = SimMedia(id="e1" * 12, type=MediaType.MULTI_CLIP_EDIT, size=150 * KB, filename="")
    pipeline = local([edit])
    message = DownloadMessage.create(
        run_id="edit-run",
        correlation_id="edit-run",
        provider="gopro",
        media_id=edit.id,
        filename=f"{edit.id}.json",  # what the listing makes of an edit: `<id>.<file_extension>`
        media_type="video",
        captured_at=edit.captured_at.isoformat(),
    )
    pipeline.client("sqs").send_message(QueueUrl=pipeline.settings.queue_url, MessageBody=message.to_json())
    drained, _ = pipeline.drain(timeout=60)
    assert drained
    assert record(pipeline, edit).status is MediaStatus.COMPLETED
    assert set(s3_objects(pipeline)) == {key_of(pipeline, edit, f"{edit.id}.mp4")}
    assert stored_sha(pipeline, key_of(pipeline, edit, f"{edit.id}.mp4")) == pipeline.simulator.source_sha256(
        edit.id
    )


# --- RAW ------------------------------------------------------------------------------------------------------


PHOTO = SimMedia(id="f1" * 12, type=MediaType.PHOTO, size=60 * KB, filename="GOPR0042.JPG", raw=True)
BURST = SimMedia(id="f2" * 12, type=MediaType.BURST, size=30 * KB, items=3, filename="G0010043.JPG", raw=True)


@pytest.mark.parametrize("include_raw", [True, False], ids=["raw", "no-raw"])
def test_raw_photos_are_archived_beside_their_photo_when_asked(local, include_raw: bool) -> None:
    """`raw_photo` sidecars were never looked at: a RAW shooter's originals were left in the cloud."""
    env = {GoProEnv.INCLUDE_RAW: "true" if include_raw else "false"}
    pipeline = local([PHOTO, BURST], env=env, include_photos=True)
    sim = pipeline.simulator
    assert pipeline.run().ok
    expected = {key_of(pipeline, PHOTO, "GOPR0042.JPG"): sim.source_sha256(PHOTO.id)}
    for item in (1, 2, 3):
        expected[key_of(pipeline, BURST, f"G0010043_0{item}.JPG")] = sim.source_sha256(BURST.id, item)
    if include_raw:
        expected[key_of(pipeline, PHOTO, "GOPR0042.GPR")] = sim.content_sha256(PHOTO.id, "raw_photo")
        for item in (1, 2, 3):
            key = key_of(pipeline, BURST, f"G0010043_0{item}.GPR")
            expected[key] = sim.content_sha256(BURST.id, "raw_photo", item)
    assert set(s3_objects(pipeline)) == set(expected)
    for key, sha in expected.items():
        assert stored_sha(pipeline, key) == sha, key


# --- availability and refreshed links -------------------------------------------------------------------------


def test_entries_marked_unavailable_are_never_fetched(local) -> None:
    """An `available: false` source beside the real one: it was taken as a second item (the medium then looked
    incomplete, or the stale bytes were archived)."""
    medium = SimMedia(id="a1" * 12, size=200 * KB, filename="GX010050.MP4", stale_source=True)
    pipeline = local([medium])
    assert pipeline.run().ok
    assert record(pipeline, medium).status is MediaStatus.COMPLETED
    key = key_of(pipeline, medium, "GX010050.MP4")
    assert stored_sha(pipeline, key) == pipeline.simulator.source_sha256(medium.id)
    assert not [r for r in pipeline.simulator.requests_to("content") if "/stale/" in r.path]


def test_an_expired_link_is_refreshed_by_label_and_item_never_by_position(local) -> None:
    """Links expire while frame 3 of a burst is being copied, and the fresh descriptor no longer lists frame 2:
    refreshing by position handed frame 3 the link of frame 4 (the engine caught the changed object and the
    whole medium went back to SQS); by `(label, item_number)` frame 3 goes on from its own fresh link."""
    burst = SimMedia(id="b1" * 12, type=MediaType.BURST, size=6 * MIB, items=4, filename="G0020001.JPG")
    pipeline = local([burst], include_photos=True, transfer_window=1)
    sim = pipeline.simulator
    expired: list[bool] = []

    def expire_links(params: dict, **_: object) -> None:
        if not expired and "G0020001_03" in params.get("url_path", ""):
            expired.append(True)
            restore(pipeline, burst.id, withheld_items=(2,))
            sim.advance_clock(7200)  # every link handed out so far has expired

    pipeline.client("s3").meta.events.register("before-call.s3.UploadPart", expire_links)
    assert pipeline.run().ok
    assert expired
    state = record(pipeline, burst)
    assert (state.status, state.attempts) == (MediaStatus.COMPLETED, 1)  # refreshed in place, not retried
    content = [(r.path, r.status) for r in sim.requests_to("content") if r.method == "GET"]
    refused = content.index((f"/content/{burst.id}/source/3.jpg", 403))
    assert content[refused + 1] == (f"/content/{burst.id}/source/3.jpg", 206)  # its own link, refreshed
    for item in (1, 2, 3, 4):
        key = key_of(pipeline, burst, f"G0020001_0{item}.JPG")
        assert stored_sha(pipeline, key) == sim.source_sha256(burst.id, item), item


# --- a 404 is not proof of deletion ---------------------------------------------------------------------------


VIDEO = SimMedia(id="9a" * 12, size=200 * KB, filename="GX010060.MP4")


def test_a_single_404_is_not_a_deletion(local) -> None:
    """GoPro answers a 404 now and then: the first one used to record the medium deleted, never archived."""
    pipeline = local([VIDEO])
    pipeline.simulator.faults.transient_not_found(count=1, media_id=VIDEO.id)
    result = pipeline.run()
    assert result.ok
    state = record(pipeline, VIDEO)
    assert (state.status, state.note, state.attempts) == (MediaStatus.COMPLETED, None, 2)
    assert state.s3_key == key_of(pipeline, VIDEO, "GX010060.MP4")
    assert result.report is not None
    assert result.report["source_deleted"] == 0


def test_404s_while_the_medium_is_still_listed_keep_it_retryable(local) -> None:
    """Three 404s on one night, but a fresh listing still shows the medium: FAILED (retryable), not deleted;
    a redrive archives it. Without the listing check the second 404 recorded it deleted."""
    pipeline = local([VIDEO], full_reconcile_days=0)
    pipeline.simulator.faults.transient_not_found(count=3, media_id=VIDEO.id)
    pipeline.run()
    state = record(pipeline, VIDEO)
    assert (state.status, state.note) == (MediaStatus.FAILED, NOTE_NOT_FOUND)
    assert pipeline.run().listing["enqueued"] == 0  # FAILED: its message is in the DLQ, the operator's to redrive
    redrive(pipeline)
    assert pipeline.drain(timeout=60)[0]
    state = record(pipeline, VIDEO)
    assert (state.status, state.note) == (MediaStatus.COMPLETED, None)
    assert stored_sha(pipeline, state.s3_key) == pipeline.simulator.source_sha256(VIDEO.id)


def test_a_deletion_is_recorded_after_a_second_404_and_a_fresh_listing_without_it(local) -> None:
    pipeline = local([VIDEO, CHAPTERED])
    sim = pipeline.simulator
    result = pipeline.run(after_listing=lambda p: p.simulator.delete_media(VIDEO.id))
    assert result.ok
    state = record(pipeline, VIDEO)
    assert (state.status, state.note, state.attempts) == (MediaStatus.COMPLETED, NOTE_SOURCE_DELETED, 2)
    assert state.s3_key is None
    assert result.report is not None
    assert result.report["source_deleted"] == 1
    assert len(sim.requests_to("download")) >= 3  # two 404s for the deleted one, one for the other
    assert len(sim.requests_to("search")) >= 2  # the night's listing and the confirming walk


def test_a_full_reconcile_that_lists_a_medium_recorded_deleted_brings_it_back(local) -> None:
    """Restored from GoPro's trash: it was COMPLETED (source_deleted) for ever, so never archived."""
    pipeline = local([VIDEO], full_reconcile_days=0)
    pipeline.run(after_listing=lambda p: p.simulator.delete_media(VIDEO.id))
    assert record(pipeline, VIDEO).note == NOTE_SOURCE_DELETED
    restore(pipeline, VIDEO.id)
    second = pipeline.run()
    assert second.ok
    assert second.listing["enqueued"] == 1
    state = record(pipeline, VIDEO)
    assert (state.status, state.note) == (MediaStatus.COMPLETED, None)
    assert stored_sha(pipeline, state.s3_key) == pipeline.simulator.source_sha256(VIDEO.id)


def test_nights_with_a_transient_404_archive_every_chapter_then_upload_nothing(local) -> None:
    """The download half of the issue's acceptance night: a transient 404 on two media and a chaptered
    recording; the first night archives everything byte-exact, the next uploads nothing. The listing faults
    (short pages, an absurd medium) are the listing's tests."""
    media = [
        CHAPTERED,
        VIDEO,
        SimMedia(id="9b" * 12, size=150 * KB, filename="GX010061.MP4"),
        SimMedia(id="9c" * 12, size=150 * KB, filename=""),
    ]
    pipeline = local(media, full_reconcile_days=7)
    sim = pipeline.simulator
    for medium in (VIDEO, media[3]):
        sim.faults.transient_not_found(count=1, media_id=medium.id)
    first = pipeline.run()
    assert first.ok
    assert first.report["synced"] == 4
    assert first.report["source_deleted"] == 0
    files = {
        key_of(pipeline, CHAPTERED, f"GX010042_0{item}.MP4"): sim.source_sha256(CHAPTERED.id, item)
        for item in (1, 2, 3)
    }
    files[key_of(pipeline, VIDEO, "GX010060.MP4")] = sim.source_sha256(VIDEO.id)
    files[key_of(pipeline, media[2], "GX010061.MP4")] = sim.source_sha256(media[2].id)
    files[key_of(pipeline, media[3], f"{media[3].id}.mp4")] = sim.source_sha256(media[3].id)
    assert set(s3_objects(pipeline)) == set(files)
    for key, sha in files.items():
        assert stored_sha(pipeline, key) == sha, key
    before = s3_objects(pipeline)
    sim.clear_requests()
    assert pipeline.run().listing["enqueued"] == 0
    assert s3_objects(pipeline) == before
    assert sim.requests_to("content") == []
