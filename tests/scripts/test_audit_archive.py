"""scripts/audit_archive.py against an archive a real night made (moto server + GoPro simulator + the local
runtime), then damaged behind the pipeline's back: a clean archive is clean, every kind of damage is caught and
named, `--repair` puts the medium back on the queue and the next drain makes the archive clean again."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devtools.gopro_simulator import MB, MediaType, SimMedia, SimulatorConfig
from devtools.local_runtime import LocalPipeline
from pipeline.config import EnvVar, Settings
from pipeline.messages import parse
from pipeline.providers.base import MediaItem
from pipeline.providers.base import MediaType as MediaKind
from pipeline.providers.errors import InvalidMediaId
from pipeline.providers.gopro.config import GoProEnv
from pipeline.services.listing import ListingService
from pipeline.services.sidecar import SIDECAR_NAME
from pipeline.state import NOTE_SOURCE_DELETED, Checksum, MediaRecord, MediaStatus, StateStore
from pipeline.transfer.archive import META_MEDIA_ID
from pipeline.transfer.checksums import crc32c, to_base64
from scripts import _audit_archive as audit_archive
from scripts import _audit_checks as checks
from tests.scripts.conftest import ENV, LocalStack, Result

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
SINGLE = "5f0c1a2b3c4d5e6f70819a01"  # 3 MB: one PutObject
LARGE = "5f0c1a2b3c4d5e6f70819a02"  # 7 MB: multipart (2 parts of 5 MiB at most)
CHAPTERED = "5f0c1a2b3c4d5e6f70819a03"  # 2 files of 3 MB: one record, two objects
DELETED = "5f0c1a2b3c4d5e6f70819a04"  # deleted at the source between the listing and its download
PHOTO = "5f0c1a2b3c4d5e6f70819f01"  # not archived (photos are off by default)
LATE = "5f0c1a2b3c4d5e6f70819a05"  # appears after the night


def library() -> SimulatorConfig:
    def video(media_id: str, index: int, size: int, items: int = 1) -> SimMedia:
        moment = START + timedelta(days=index)
        return SimMedia(
            id=media_id, type=MediaType.VIDEO, size=size, items=items, captured_at=moment, created_at=moment
        )

    media = [
        video(SINGLE, 0, 3 * MB),
        video(LARGE, 1, 7 * MB),
        video(CHAPTERED, 2, 6 * MB, items=2),
        video(DELETED, 3, 1 * MB),
        SimMedia(id=PHOTO, type=MediaType.PHOTO, size=MB // 2, captured_at=START, created_at=START),
    ]
    return SimulatorConfig(media=media, seed=7)


@pytest.fixture
def night(stack: LocalStack, gopro_sim: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPipeline]:
    """One night archived into the scripts' local stack (names of `--env dev`), the simulator reachable by the
    script as by the pipeline."""
    sim = gopro_sim(library())
    pipeline = LocalPipeline(
        base_settings=Settings.from_env({}),
        aws_endpoint_url=stack.aws.endpoint_url,
        simulator=sim,
        retry_delay=0,
        settings_overrides={
            "part_size_bytes": 5 * MIB,
            "multipart_threshold_bytes": 5 * MIB,
            "retry_base_delay": 0.01,
            "retry_max_delay": 0.05,
            "retry_max_attempts": 2,
        },
    ).start()
    try:
        result = pipeline.run(after_listing=lambda p: p.simulator.delete_media(DELETED))
        assert result.ok, result
        monkeypatch.setenv(GoProEnv.API_URL, sim.base_url)
        monkeypatch.setenv(GoProEnv.AUTH_URL, sim.base_url)
        monkeypatch.setenv(EnvVar.RETRY_MAX_ATTEMPTS, "1")
        yield pipeline
    finally:
        pipeline.stop()


def audit(run_script: Any, stack: LocalStack, *extra: str) -> Result:
    return run_script(audit_archive, stack.args("--json", *extra))


def kinds(result: Result) -> set[tuple[str, str | None]]:
    return {(f["kind"], f["media_id"]) for f in result.json()["findings"]}


def key_of(pipeline: LocalPipeline, media_id: str) -> str:
    record = pipeline.app.state.media.get("gopro", media_id)
    assert record is not None
    assert record.s3_key
    return record.s3_key


def keys_under(pipeline: LocalPipeline, prefix: str) -> list[str]:
    """The media objects under `prefix` (not the metadata sidecar beside them)."""
    s3 = pipeline.client("s3")
    listed = s3.list_objects_v2(Bucket=pipeline.settings.bucket_name, Prefix=prefix).get("Contents", [])
    return sorted(entry["Key"] for entry in listed if not entry["Key"].endswith("/" + SIDECAR_NAME))


def rewrite(pipeline: LocalPipeline, key: str, body: bytes, *, keep_metadata: bool = True, **extra: Any) -> None:
    """Overwrite an archived object as a person or another tool might: with boto3's default checksum (CRC32)."""
    s3, bucket = pipeline.client("s3"), pipeline.settings.bucket_name
    metadata = s3.head_object(Bucket=bucket, Key=key)["Metadata"] if keep_metadata else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={**metadata, **extra.pop("metadata", {})}, **extra)


def read(pipeline: LocalPipeline, key: str) -> bytes:
    s3 = pipeline.client("s3")
    return s3.get_object(Bucket=pipeline.settings.bucket_name, Key=key)["Body"].read()


def test_a_clean_archive_is_reported_clean(night: LocalPipeline, stack: LocalStack, run_script) -> None:
    result = audit(run_script, stack)
    assert result.code == 0, result.out + result.err
    doc = result.json()
    assert doc["clean"] is True
    assert doc["findings"] == []
    assert doc["accounted"]["completed_verified"] == 3  # single, multipart and the chaptered one (2 objects)
    assert doc["accounted"]["deleted_at_source"] == 1
    assert doc["accounted"]["not_archivable_not_a_video"] == 1
    assert doc["totals"]["objects"] == doc["totals"]["objects_checked"] == 4
    assert doc["totals"]["listed"] == 4  # the deleted video is no longer listed


def test_the_table_a_person_reads(night: LocalPipeline, stack: LocalStack, run_script) -> None:
    result = run_script(audit_archive, stack.args())
    assert result.code == 0, result.err
    assert "findings: 0 (the archive agrees with the table and listing)" in result.out
    assert "completed verified" in result.out
    s3 = night.client("s3")
    s3.delete_object(Bucket=night.settings.bucket_name, Key=key_of(night, SINGLE))
    result = run_script(audit_archive, stack.args())
    assert result.code == audit_archive.EXIT_FINDINGS
    assert f"missing_object         {SINGLE}" in result.out
    assert "run again with --repair" in result.out


def test_a_deleted_object_is_caught(night: LocalPipeline, stack: LocalStack, run_script) -> None:
    night.client("s3").delete_object(Bucket=night.settings.bucket_name, Key=key_of(night, LARGE))
    result = audit(run_script, stack)
    assert result.code == audit_archive.EXIT_FINDINGS
    assert kinds(result) == {("missing_object", LARGE)}
    assert result.json()["findings"][0]["repair"] == "reopen+enqueue"


def test_one_missing_file_of_a_chaptered_video_is_caught(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    folder = key_of(night, CHAPTERED)
    _first, second = keys_under(night, folder)
    night.client("s3").delete_object(Bucket=night.settings.bucket_name, Key=second)
    result = audit(run_script, stack)
    assert kinds(result) == {("missing_object", CHAPTERED)}
    assert "1 of 2 file(s)" in result.json()["findings"][0]["detail"]


def test_a_truncated_object_is_caught(night: LocalPipeline, stack: LocalStack, run_script) -> None:
    key = key_of(night, SINGLE)
    rewrite(night, key, read(night, key)[:-1000])
    result = audit(run_script, stack)
    assert result.code == audit_archive.EXIT_FINDINGS
    assert kinds(result) == {("size_mismatch", SINGLE)}


def test_an_object_overwritten_with_the_same_size_is_caught(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    key = key_of(night, LARGE)
    body = read(night, key)
    rewrite(night, key, bytes(len(body)))  # our metadata kept, new bytes with boto3's default CRC32
    result = audit(run_script, stack)
    assert kinds(result) == {("checksum_mismatch", LARGE)}
    assert "CRC32 checksum" in result.json()["findings"][0]["detail"]


def test_an_object_of_another_medium_at_the_key_is_caught(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    key = key_of(night, SINGLE)
    rewrite(night, key, read(night, key), keep_metadata=False, metadata={META_MEDIA_ID: "someone-else"})
    result = audit(run_script, stack)
    assert kinds(result) == {("overwritten", SINGLE)}


def test_an_overwrite_that_forges_the_metadata_takes_deep(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    """moto keeps no CRC32C of a single PutObject, so HEAD can only compare the metadata the pipeline wrote; an
    overwrite that copies it (and sends a CRC32C of its own bytes) is caught by reading the bytes."""
    key = key_of(night, SINGLE)
    body = bytearray(read(night, key))
    body[100] ^= 0xFF
    rewrite(night, key, bytes(body), ChecksumCRC32C=to_base64(crc32c(bytes(body))))
    assert audit(run_script, stack).code == 0  # the limit of HEAD on moto (LocalStack keeps the real one)
    deep = audit(run_script, stack, "--deep")
    assert deep.code == audit_archive.EXIT_FINDINGS
    assert kinds(deep) == {("checksum_mismatch", SINGLE)}
    assert "(read)" in deep.json()["findings"][0]["detail"]


def test_a_listed_medium_without_a_record_is_caught_and_repaired(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    night.simulator.add_media(
        SimMedia(id=LATE, type=MediaType.VIDEO, size=MB, captured_at=START, created_at=START + timedelta(days=9))
    )
    result = audit(run_script, stack)
    assert kinds(result) == {("not_archived", LATE)}
    assert stack.drain(night.settings.queue_url) == []  # an audit alone sends nothing
    repaired = audit(run_script, stack, "--repair")
    assert repaired.json()["repairs"][0]["result"] == "enqueued"
    [raw] = stack.drain(night.settings.queue_url)
    message = parse(raw["Body"])
    assert message.media_id == LATE
    assert message.run_id.startswith(audit_archive.AUDIT_RUN_PREFIX + "-")


def test_repair_reopens_a_damaged_medium_and_the_next_drain_restores_it(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    key = key_of(night, SINGLE)
    original = read(night, key)
    rewrite(night, key, original[:-1])
    result = audit(run_script, stack, "--repair")
    assert result.code == audit_archive.EXIT_FINDINGS  # what the audit found still stands until it is archived
    [repair] = result.json()["repairs"]
    assert (repair["media_id"], repair["action"], repair["result"]) == (SINGLE, "reopen+enqueue", "enqueued")
    record = night.app.state.media.get("gopro", SINGLE)
    assert record.status is MediaStatus.PENDING
    assert "audit" in record.last_error
    assert "size_mismatch" in record.last_error
    night.drain()
    assert night.app.state.media.get("gopro", SINGLE).status is MediaStatus.COMPLETED
    assert read(night, key) == original
    again = audit(run_script, stack)
    assert again.code == 0, again.out


def test_a_medium_recorded_deleted_that_comes_back_is_archived_by_repair(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    """The provider answered 404 for a while (the record says deleted at the source), then lists it again."""
    sim = night.simulator
    sim.add_media(dataclasses.replace(sim.media(DELETED), deleted=False))
    result = audit(run_script, stack)
    assert kinds(result) == {("deleted_but_listed", DELETED)}
    repaired = audit(run_script, stack, "--repair")
    assert [(r["media_id"], r["result"]) for r in repaired.json()["repairs"]] == [(DELETED, "enqueued")]
    night.drain()
    record = night.app.state.media.get("gopro", DELETED)
    assert (record.status, record.note) == (MediaStatus.COMPLETED, None)
    assert audit(run_script, stack).code == 0


def test_repair_never_reopens_what_the_provider_no_longer_has(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    s3, bucket = night.client("s3"), night.settings.bucket_name
    for media_id in (SINGLE, LARGE):
        s3.delete_object(Bucket=bucket, Key=key_of(night, media_id))
    night.simulator.delete_media(SINGLE)
    result = audit(run_script, stack, "--repair")
    repairs = {entry["media_id"]: entry for entry in result.json()["repairs"]}
    assert repairs[SINGLE]["result"] == "not repaired"
    assert "restore a previous version" in repairs[SINGLE]["detail"]
    assert repairs[LARGE]["result"] == "enqueued"  # one medium that cannot be repaired stops no other
    assert night.app.state.media.get("gopro", SINGLE).status is MediaStatus.COMPLETED
    assert [parse(m["Body"]).media_id for m in stack.drain(night.settings.queue_url)] == [LARGE]


def test_repair_stops_at_max_repairs(night: LocalPipeline, stack: LocalStack, run_script) -> None:
    s3, bucket = night.client("s3"), night.settings.bucket_name
    for media_id in (SINGLE, LARGE):
        s3.delete_object(Bucket=bucket, Key=key_of(night, media_id))
    result = audit(run_script, stack, "--repair", "--max-repairs", "1", "--no-listing")
    assert sorted(entry["result"] for entry in result.json()["repairs"]) == ["enqueued", "skipped"]
    assert len(stack.drain(night.settings.queue_url)) == 1
    pending = night.app.state.media.count_by_status(provider="gopro")[MediaStatus.PENDING]
    assert pending == 1


def test_repair_leaves_a_record_that_changed_since_the_audit_alone(
    night: LocalPipeline, stack: LocalStack
) -> None:
    state = night.app.state
    record = state.media.get("gopro", SINGLE)
    refused = state.media.reopen_completed("gopro", SINGLE, checksum_value="AAAAAA==", reason="audit: test")
    assert not refused
    assert state.media.get("gopro", SINGLE).status is MediaStatus.COMPLETED
    applied = state.media.reopen_completed("gopro", SINGLE, checksum_value=record.checksum.value, reason="x")
    assert applied
    assert state.media.get("gopro", SINGLE).status is MediaStatus.PENDING


def test_a_stalled_medium_an_unclaimed_object_and_an_open_upload_are_caught(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    state, s3, bucket = night.app.state, night.client("s3"), night.settings.bucket_name
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    state.media.claim("gopro", LATE, owner="crashed", run_id="r-0", lease_seconds=60, now=an_hour_ago)
    stray = "gopro/2020/01/01/nobodysmedium/GOPR0001.MP4"
    s3.put_object(Bucket=bucket, Key=stray, Body=b"x")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="gopro/2020/01/02/abandoned/GOPR0002.MP4")
    result = audit(run_script, stack, "--no-listing")
    assert kinds(result) == {
        ("stalled", LATE),
        ("unclaimed_object", "nobodysmedium"),
        ("open_upload", "abandoned"),
    }
    # A worker holding a live lease explains its upload, and its medium is not stalled.
    live = state.media.claim("gopro", "abandoned", owner="busy", run_id="r-1", lease_seconds=600)
    assert live.claimed
    result = audit(run_script, stack, "--no-listing")
    assert ("open_upload", "abandoned") not in kinds(result)
    assert result.json()["accounted"]["uploads_in_progress"] == 1
    s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def test_what_an_unfinished_medium_left_in_the_bucket_is_accounted_for(
    night: LocalPipeline, stack: LocalStack, run_script
) -> None:
    """A released medium keeps its checkpoint so its successor resumes the upload; a chaptered one part-way keeps
    the files already archived (the next delivery skips them). Neither is a finding."""
    state, s3, bucket = night.app.state, night.client("s3"), night.settings.bucket_name
    folder = f"gopro/2025/06/10/{LATE}/"
    s3.put_object(Bucket=bucket, Key=folder + "GX01_01.MP4", Body=b"first chapter")
    upload = s3.create_multipart_upload(Bucket=bucket, Key=folder + "GX01_02.MP4")
    assert state.media.claim("gopro", LATE, owner="w", run_id="r-1", lease_seconds=60)
    checkpoint = {"key": upload["Key"], "multipart": {"upload_id": upload["UploadId"]}}
    assert state.media.save_checkpoint("gopro", LATE, owner="w", checkpoint=checkpoint)
    assert state.media.release("gopro", LATE, owner="w", error="SourceError: cut")
    result = audit(run_script, stack, "--no-listing")
    assert result.code == 0, result.json()["findings"]
    accounted = result.json()["accounted"]
    assert (accounted["objects_of_unfinished_media"], accounted["uploads_in_progress"]) == (1, 1)
    assert accounted["pending"] == 1


def test_a_missing_bucket_is_one_line_and_exit_3(night: LocalPipeline, stack: LocalStack, run_script) -> None:
    result = run_script(audit_archive, stack.args("--bucket", "no-such-archive-bucket", "--no-listing"))
    assert result.code == 3
    assert result.err.count("\n") == 1
    assert "bucket no-such-archive-bucket not found" in result.err


def test_runs_as_a_file(night: LocalPipeline, stack: LocalStack) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/audit_archive.py", *stack.args("--json")],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert '"clean": true' in done.stdout


# --- the comparison on its own (no AWS) ------------------------------------------------------------------------


class _Ids:
    """The one provider method the lister's rule calls."""

    @staticmethod
    def validate_media_id(media_id: str) -> str:
        if not media_id.isalnum():
            raise InvalidMediaId(media_id, "letters and digits")
        return media_id


def _item(media_id: str, media_type: MediaKind, *, ready: bool = True) -> MediaItem:
    return MediaItem(
        provider="gopro",
        media_id=media_id,
        filename=f"{media_id}.MP4",
        media_type=media_type,
        size=1,
        captured_at=None,
        created_at=None,
        ready=ready,
    )


@pytest.mark.parametrize("include_photos", [False, True])
def test_archivable_is_the_listers_own_rule(include_photos: bool) -> None:
    settings = Settings.from_env({}).with_overrides(include_photos=include_photos)
    lister: Any = ListingService.__new__(ListingService)
    lister._provider, lister._settings = _Ids(), settings
    items = [_item(f"id{i}{kind.value}", kind) for i, kind in enumerate(MediaKind)]
    items += [_item("not-an-id", MediaKind.VIDEO), _item("slow", MediaKind.VIDEO, ready=False)]
    for item in items:
        ours = checks.skip_reason(_Ids(), item, include_photos=include_photos)  # type: ignore[arg-type]
        theirs = lister._skip_reason(item)
        assert ours == (theirs.value if theirs else None), item


def test_failed_media_need_a_reason_and_in_progress_ones_a_live_lease() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    found = checks.Audit()
    records = [
        MediaRecord("gopro", "a", MediaStatus.FAILED, last_error="SourceError: cut"),
        MediaRecord("gopro", "b", MediaStatus.FAILED),
        MediaRecord("gopro", "c", MediaStatus.IN_PROGRESS, lease_expires_at=now + timedelta(minutes=5)),
        MediaRecord("gopro", "d", MediaStatus.IN_PROGRESS, lease_expires_at=now - timedelta(minutes=5)),
        MediaRecord("gopro", "e", MediaStatus.PENDING),
    ]
    for record in records:
        checks.check_record(found, record, now)
    assert {(f.kind, f.media_id) for f in found.findings} == {
        (checks.Kind.FAILED_WITHOUT_REASON, "b"),
        (checks.Kind.STALLED, "d"),
    }
    assert found.accounted == {"failed_with_reason": 1, "in_progress": 1, "pending": 1}


def test_a_medium_recorded_deleted_but_still_listed_is_caught() -> None:
    found = checks.Audit()
    records = {
        "gone": MediaRecord("gopro", "gone", MediaStatus.COMPLETED, note=NOTE_SOURCE_DELETED),
        "kept": MediaRecord("gopro", "kept", MediaStatus.COMPLETED, s3_key="k", checksum=Checksum("CRC32C", "x")),
    }
    checks.check_listing(found, [_item("gone", MediaKind.VIDEO)], records, lambda _item: None)
    assert [(f.kind, f.media_id) for f in found.findings] == [(checks.Kind.DELETED_BUT_LISTED, "gone")]
    assert found.accounted == {"archived_no_longer_listed": 1}  # "kept": archived, since removed from the cloud


def test_a_composite_checksum_is_unverified_without_deep() -> None:
    found = checks.Audit()
    record = MediaRecord(
        "gopro",
        "m",
        MediaStatus.COMPLETED,
        s3_key="gopro/undated/m/a.MP4",
        size=3,
        checksum=Checksum("CRC32C", "v"),
    )
    objects = {"gopro/undated/m/a.MP4": checks.StoredObject("gopro/undated/m/a.MP4", 3)}

    def facts(key: str) -> checks.ObjectFacts:
        return checks.ObjectFacts(key, 3, "m", 1, None, "composite checksum only")

    claimed = checks.check_completed(found, record, checks.BucketListing(objects), facts)
    assert claimed == set(objects)
    assert [(f.kind, f.detail) for f in found.findings] == [
        (checks.Kind.UNVERIFIED, "composite checksum only: run with --deep to read it")
    ]


def test_the_stack_output_lookup_names_the_stack() -> None:
    from infra_cdk.settings import STACK_NAME_PREFIX

    assert audit_archive.STACK_NAME_PREFIX == STACK_NAME_PREFIX
    assert audit_archive.BUCKET_OUTPUT in Path(REPO, "infra_cdk", "stack.py").read_text()


def test_reopen_completed_only_moves_the_record_the_audit_read() -> None:
    state = StateStore.in_memory()
    assert state.media.claim("gopro", "m1", owner="w", run_id="r", lease_seconds=60)
    done = state.media.complete(
        "gopro", "m1", owner="w", s3_key="k", size=1, checksum=Checksum("CRC32C", "v1"), duration_s=1.0
    )
    assert done
    assert not state.media.reopen_completed("gopro", "m1", checksum_value="v0", reason="audit")
    assert not state.media.reopen_completed("gopro", "m1", checksum_value=None, reason="audit")
    assert not state.media.reopen_completed("gopro", "nothing", checksum_value="v1", reason="audit")
    assert state.media.reopen_completed("gopro", "m1", checksum_value="v1", reason="audit: missing_object")
    record = state.media.get("gopro", "m1")
    assert (record.status, record.last_error, record.s3_key, record.checksum) == (
        MediaStatus.PENDING,
        "audit: missing_object",
        None,
        None,
    )
    assert not state.media.reopen_completed("gopro", "m1", checksum_value="v1", reason="again")  # not COMPLETED


def test_a_deployed_bucket_is_found_in_the_stack_outputs(stack: LocalStack) -> None:
    """Against AWS (no --endpoint-url) the bucket's generated name comes from the stack's output."""
    cloudformation = stack.client("cloudformation")
    template = {
        "Resources": {"Archive": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {audit_archive.BUCKET_OUTPUT: {"Value": {"Ref": "Archive"}}},
    }
    name = f"{audit_archive.STACK_NAME_PREFIX}-{ENV}"
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    ctx = stack.context()
    deployed = audit_archive.Context(ctx.settings.with_overrides(aws_endpoint_url=None), ctx.names)
    deployed_client = deployed.client
    clients = {"cloudformation": cloudformation}
    object.__setattr__(deployed, "client", lambda service, **kw: clients.get(service) or deployed_client(service))
    bucket = audit_archive.resolve_bucket(deployed, None)
    assert bucket in [b["Name"] for b in stack.client("s3").list_buckets()["Buckets"]]
    cloudformation.delete_stack(StackName=name)
    with pytest.raises(audit_archive.MissingResource, match="pass --bucket"):
        audit_archive.resolve_bucket(deployed, None)
    assert audit_archive.resolve_bucket(deployed, "given") == "given"


class _ColdS3:
    """HeadObject of an object the lifecycle moved to Deep Archive; GetObject would fail (InvalidObjectState)."""

    def head_object(self, **_kwargs: Any) -> dict[str, Any]:
        return {
            "ContentLength": 3,
            "StorageClass": "DEEP_ARCHIVE",
            "ChecksumCRC32C": "AAAAAQ==",
            "ChecksumType": "FULL_OBJECT",
            "Metadata": {META_MEDIA_ID: "m", "sync-item": "1"},
        }

    def get_object(self, **_kwargs: Any) -> dict[str, Any]:
        raise AssertionError("a Deep Archive object cannot be read without a restore")


def test_deep_checks_an_object_in_deep_archive_by_head_instead_of_failing() -> None:
    facts = audit_archive.object_facts(_ColdS3(), "bucket", "gopro/undated/m/a.MP4", deep=True)
    assert facts is not None
    assert (facts.checksum, facts.checksum_source) == ("AAAAAQ==", "s3")


class _Refusing(_ColdS3):
    def __init__(self, code: str) -> None:
        self.code = code

    def head_object(self, **_kwargs: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "HeadObject")


def test_an_object_s3_will_not_describe_is_unverified_and_the_audit_goes_on() -> None:
    facts = audit_archive.object_facts(_Refusing("InternalError"), "bucket", "gopro/undated/m/a.MP4", deep=False)
    assert facts is not None
    assert facts.error == "HeadObject failed: InternalError"
    found = checks.Audit()
    key = "gopro/undated/m/a.MP4"
    record = MediaRecord("gopro", "m", MediaStatus.COMPLETED, s3_key=key, size=3, checksum=Checksum("CRC32C", "v"))
    listing = checks.BucketListing({key: checks.StoredObject(key, 3)})
    checks.check_completed(found, record, listing, lambda _key: facts)
    assert [(f.kind, f.detail) for f in found.findings] == [(checks.Kind.UNVERIFIED, facts.error)]


def test_a_missing_permission_on_an_object_ends_the_audit_with_exit_4() -> None:
    with pytest.raises(audit_archive.ScriptError) as stopped:
        audit_archive.object_facts(_Refusing("AccessDenied"), "bucket", "gopro/undated/m/a.MP4", deep=False)
    assert stopped.value.exit_code == 4
