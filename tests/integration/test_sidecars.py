"""Sidecars over a real moto server and the GoPro simulator: written by the downloader after the objects, audited
against them, and back-filled for media archived before sidecars existed."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.gopro_simulator import KB, SimMedia, SimulatorConfig
from devtools.gopro_simulator.faults import ServerError
from devtools.local_runtime import LocalPipeline
from pipeline.config import Settings
from pipeline.services.sidecar import SIDECAR_STORAGE_CLASS, SidecarError, SidecarWriter, read_sidecar, sidecar_key
from pipeline.state import MediaStatus
from scripts import _backfill_sidecars as backfill_sidecars
from scripts._archive import completed_records, list_folder, media_folder

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
FAST = {"part_size_bytes": 5 * MIB, "multipart_threshold_bytes": 5 * MIB, "retry_base_delay": 0.01}
SINGLE = "aa0000000000000000000001"
CHAPTERED = "aa0000000000000000000002"


@pytest.fixture
def archived(aws, gopro_sim):
    library = SimulatorConfig(
        media=[
            SimMedia(id=SINGLE, size=200 * KB, camera_model="HERO11 Black"),
            SimMedia(id=CHAPTERED, size=150 * KB, items=2),
        ],
        seed=3,
    )
    pipeline = LocalPipeline(
        base_settings=Settings.from_env({}),
        aws_endpoint_url=aws.endpoint_url,
        simulator=gopro_sim(library),
        retry_delay=0,
        settings_overrides=FAST,
    ).start()
    result = pipeline.run()
    assert result.ok, result
    yield pipeline
    pipeline.stop()


def sidecar_of(pipeline: LocalPipeline, media_id: str) -> tuple[str, dict[str, Any] | None]:
    record = pipeline.app.state.media.get("gopro", media_id)
    assert record.status is MediaStatus.COMPLETED
    key = sidecar_key(media_folder(record) or "")
    return key, read_sidecar(pipeline.client("s3"), pipeline.settings.bucket_name, key)


def test_every_archived_medium_has_a_sidecar_that_matches_its_objects(archived: LocalPipeline) -> None:
    s3, bucket = archived.client("s3"), archived.settings.bucket_name
    for media_id, files in ((SINGLE, 1), (CHAPTERED, 2)):
        key, sidecar = sidecar_of(archived, media_id)
        assert sidecar is not None, f"no sidecar for {media_id}"
        assert sidecar["media_id"] == media_id
        assert sidecar["listing"]["type"] == "video"
        assert sidecar["listing"]["item_count"] == files
        record = archived.app.state.media.get("gopro", media_id)
        objects = sidecar["archive"]["objects"]
        assert sidecar["archive"]["run_id"] == record.run_id
        listed = list_folder(s3, bucket, media_folder(record) or "")
        # the audit: the sidecar lists exactly the objects in the folder, sizes and checksums as recorded
        assert [o["key"] for o in objects] == [o["Key"] for o in listed]
        assert [o["size"] for o in objects] == [o["Size"] for o in listed]
        assert sidecar["archive"]["total_size"] == record.size
        assert ",".join(o["crc32c"] for o in objects) == record.checksum.value
        assert sidecar["chapters"] == [o["filename"] for o in objects]
        assert len(set(sidecar["chapters"])) == files
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head.get("StorageClass", "STANDARD") == SIDECAR_STORAGE_CLASS
        assert head["ContentLength"] < 128 * 1024  # under the lifecycle's floor: it stays instantly readable


def test_the_writer_refuses_to_describe_an_object_that_is_missing_or_differs(archived: LocalPipeline) -> None:
    s3, bucket = archived.client("s3"), archived.settings.bucket_name
    record = archived.app.state.media.get("gopro", SINGLE)
    writer = SidecarWriter(s3, bucket)
    with pytest.raises(SidecarError, match="not in the bucket"):
        writer.archived(record.s3_key + ".gone", size=record.size, crc32c=None)
    with pytest.raises(SidecarError, match="bytes"):
        writer.archived(record.s3_key, size=record.size + 1, crc32c=None)
    with pytest.raises(SidecarError, match="CRC32C"):
        writer.archived(record.s3_key, size=record.size, crc32c="AAAAAA==")


def test_backfill_writes_missing_sidecars_once_and_refuses_media_whose_objects_are_gone(
    archived: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, bucket = archived.client("s3"), archived.settings.bucket_name
    state = archived.app.state
    single_key, before = sidecar_of(archived, SINGLE)
    chaptered_key, _ = sidecar_of(archived, CHAPTERED)
    s3.delete_object(Bucket=bucket, Key=single_key)
    s3.delete_object(Bucket=bucket, Key=chaptered_key)
    chaptered = state.media.get("gopro", CHAPTERED)
    first_chapter = list_folder(s3, bucket, media_folder(chaptered) or "")[0]["Key"]
    s3.delete_object(Bucket=bucket, Key=first_chapter)

    dry = backfill_sidecars.backfill(s3, bucket, state, "gopro", None, write=False)
    assert dry["would_write"] == [SINGLE]
    assert read_sidecar(s3, bucket, single_key) is None  # a dry run writes nothing

    outcome = backfill_sidecars.backfill(s3, bucket, state, "gopro", None, write=True)
    assert outcome["written"] == [SINGLE]
    assert len(outcome["refused"]) == 1
    assert outcome["refused"][0].startswith(CHAPTERED)
    assert read_sidecar(s3, bucket, chaptered_key) is None  # never claims a chapter that is not there
    after = read_sidecar(s3, bucket, single_key)
    assert after is not None
    assert after["archive"]["objects"] == before["archive"]["objects"]
    assert after["chapters"] == before["chapters"]

    again = backfill_sidecars.backfill(s3, bucket, state, "gopro", None, write=True)
    assert again["written"] == []
    assert again["present"] == [SINGLE]
    assert sorted(r.media_id for r in completed_records(state, "gopro")) == [SINGLE, CHAPTERED]


def test_the_demo_catalog_page_lists_what_the_night_archived(archived: LocalPipeline, tmp_path) -> None:
    from devtools.demo_catalog import write_demo_catalog

    path = write_demo_catalog(archived, tmp_path / "demo" / "catalog.html")
    text = path.read_text(encoding="utf-8")
    assert SINGLE in text
    assert CHAPTERED in text


FACTS = "aa0000000000000000000003"
FLAKY = "aa0000000000000000000004"


def test_a_simulated_medium_s_sidecar_carries_the_listing_facts_and_its_moments(
    aws, gopro_sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = SimulatorConfig(
        media=[
            SimMedia(
                id=FACTS,
                size=120 * KB,
                camera_model="HERO12 Black",
                content_title="Ridge line",
                moments=(1500, 42_000),
            ),
            SimMedia(id=FLAKY, size=120 * KB, moments=(9000,)),
        ],
        seed=4,
    )
    sim = gopro_sim(library)
    pipeline = LocalPipeline(
        base_settings=Settings.from_env({}),
        aws_endpoint_url=aws.endpoint_url,
        simulator=sim,
        retry_delay=0,
        settings_overrides=FAST,
    ).start()
    try:
        # one medium's moments call fails: only its moments are lost, never the medium
        sim.faults.add(ServerError(count=None, status=500, endpoint="moments", media_id=FLAKY))
        result = pipeline.run()
        assert result.ok, result
        _, sidecar = sidecar_of(pipeline, FACTS)
        assert sidecar is not None
        listing = sidecar["listing"]
        assert listing["camera_model"] == "HERO12 Black"
        assert listing["title"] == "Ridge line"
        assert listing["duration_s"] is not None
        assert listing["duration_s"] > 0
        assert listing["resolution"] == {"width": 3840, "height": 2160}
        assert listing["uploaded_at"] is not None
        assert listing["moments_count"] == 2
        assert [m["time_ms"] for m in listing["moments"]] == [1500, 42_000]
        assert sidecar["notes"] == []
        _, flaky = sidecar_of(pipeline, FLAKY)
        assert flaky is not None
        assert flaky["listing"]["moments"] is None
        assert "moments" in flaky["notes"][0]
    finally:
        pipeline.stop()
