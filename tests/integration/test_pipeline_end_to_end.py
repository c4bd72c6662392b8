"""The whole pipeline over a real moto server and the GoPro simulator: lister → SQS → downloaders → summary."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from devtools.gopro_simulator import KB, MB, GoProSimulator, MediaType, SimMedia, SimulatorConfig
from devtools.local_runtime import LocalPipeline
from devtools.local_runtime.demo import DELETED_ID, FLAKY_ID, apply_scenario, demo_library
from pipeline import resources
from pipeline.config import Settings
from pipeline.keys import object_key
from pipeline.messages import DownloadMessage
from pipeline.queueing import POISON_REASON_ATTRIBUTE
from pipeline.services.sidecar import SIDECAR_NAME
from pipeline.state import NOTE_SOURCE_DELETED, MediaStatus

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
FAST = {
    "part_size_bytes": 5 * MIB,
    "multipart_threshold_bytes": 5 * MIB,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "retry_max_attempts": 3,
}


@pytest.fixture
def local(aws, gopro_sim):
    started: list[LocalPipeline] = []

    def start(config: SimulatorConfig, **overrides: Any) -> LocalPipeline:
        sim = gopro_sim(config)
        pipeline = LocalPipeline(
            base_settings=Settings.from_env({}),
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


def videos(count: int, size: int = 300 * KB, **extra: Any) -> SimulatorConfig:
    media = [SimMedia(id=f"aa{index:022x}", size=size, **extra) for index in range(count)]
    return SimulatorConfig(media=media, seed=1)


def s3_objects(pipeline: LocalPipeline, *, sidecars: bool = False) -> dict[str, int]:
    """key -> number of versions (the bucket is versioned, so every upload of a key adds one), of the media's
    own objects; with `sidecars`, the metadata sidecars (`_media.json`, tests/integration/test_sidecars.py) too."""
    s3 = pipeline.client("s3")
    versions: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=pipeline.settings.bucket_name):
        for version in page.get("Versions", []):
            if not sidecars and version["Key"].endswith("/" + SIDECAR_NAME):
                continue
            versions[version["Key"]] = versions.get(version["Key"], 0) + 1
    return versions


def sha256_of(pipeline: LocalPipeline, key: str) -> str:
    """SHA-256 of the stored bytes. Read without botocore's response-checksum check: moto stores an approximate
    full-object CRC32C for multipart uploads (ours is verified against the source in tests/unit/transfer)."""
    reader = boto3.client(
        "s3",
        endpoint_url=pipeline.settings.aws_endpoint_url,
        region_name=pipeline.settings.aws_region,
        config=Config(response_checksum_validation="when_required"),
    )
    body = reader.get_object(Bucket=pipeline.settings.bucket_name, Key=key)["Body"].read()
    return hashlib.sha256(body).hexdigest()


def dlq_messages(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    answer = pipeline.client("sqs").receive_message(
        QueueUrl=pipeline.settings.dlq_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    )
    return answer.get("Messages", [])


def capture_reports(pipeline: LocalPipeline) -> str:
    """An SQS queue subscribed to the report topic, as an email subscription would be."""
    sqs, sns = pipeline.client("sqs"), pipeline.client("sns")
    url = sqs.create_queue(QueueName="report-capture")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=pipeline.settings.topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def received(pipeline: LocalPipeline, url: str) -> list[dict[str, Any]]:
    messages = []
    while True:
        batch = pipeline.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not batch.get("Messages"):
            return messages
        messages.extend(batch["Messages"])


def test_a_full_run_archives_every_video_byte_for_byte(local) -> None:
    pipeline = local(demo_library(videos=6, video_size=3 * MB))
    sim: GoProSimulator = pipeline.simulator
    result = pipeline.run(after_listing=apply_scenario)
    assert result.ok, result
    report = result.report
    assert report is not None
    assert report["enqueued"] == 6
    assert report["synced"] == 5
    assert report["source_deleted"] == 1
    assert report["retried"] >= 1  # the flaky video failed its first delivery and SQS redelivered it
    assert report["outcome"] == "OK"
    state = pipeline.app.state
    deleted = state.media.get("gopro", DELETED_ID)
    assert deleted.status is MediaStatus.COMPLETED
    assert deleted.note == NOTE_SOURCE_DELETED
    assert state.media.get("gopro", FLAKY_ID).attempts == 2
    objects = s3_objects(pipeline)
    checked = 0
    for medium in sim.library:
        if medium.type != MediaType.VIDEO:
            continue
        record = state.media.get("gopro", medium.id)
        assert record.status is MediaStatus.COMPLETED
        for item in range(1, medium.items + 1):
            name = medium.filename if medium.items == 1 else f"{Path(medium.filename).stem}_{item:02d}.MP4"
            key = object_key("gopro", medium.id, medium.captured_at, name)
            assert objects.get(key) == 1, key
            assert sha256_of(pipeline, key) == sim.source_sha256(medium.id, item=item)
            checked += 1
    assert checked == 6  # 4 single-file videos + a chaptered one in 2 files
    assert not any(DELETED_ID in key for key in objects)


@pytest.mark.parametrize("full_reconcile_days", [7, 0], ids=["incremental-night", "full-reconcile-night"])
def test_a_second_run_enqueues_and_uploads_nothing(local, full_reconcile_days: int) -> None:
    pipeline = local(videos(4), full_reconcile_days=full_reconcile_days)
    assert pipeline.run().ok
    reports = capture_reports(pipeline)
    before = s3_objects(pipeline)
    pipeline.simulator.clear_requests()
    second = pipeline.run()
    assert second.ok
    assert second.listing["enqueued"] == 0
    # An incremental night stops at the high-water mark; a full reconcile checks all 4 against the table.
    assert second.listing["already_archived"] == (4 if full_reconcile_days == 0 else 0)
    assert s3_objects(pipeline) == before
    assert pipeline.simulator.requests_to("content") == []
    assert pipeline.simulator.requests_to("download") == []
    # A quiet incremental night is not reported unless asked for; a full reconcile always reports (a weekly
    # sign of life).
    assert len(received(pipeline, reports)) == (1 if full_reconcile_days == 0 else 0)


def test_a_quiet_night_is_reported_when_asked(local) -> None:
    pipeline = local(videos(2), report_quiet_nights=True)
    assert pipeline.run().ok
    reports = capture_reports(pipeline)
    assert pipeline.run().ok
    # Nothing was queued, so no drain alarm: the lister itself reported the quiet night, once.
    (message,) = received(pipeline, reports)
    assert json.loads(message["Body"])["Subject"].startswith("[gopro-sync dev] OK: 0 archived")


def test_a_failed_listing_sends_a_critical_report(local) -> None:
    pipeline = local(videos(2))
    reports = capture_reports(pipeline)
    pipeline.simulator.faults.blacklist_refresh_token()
    pipeline.simulator.faults.expire_access_tokens()
    result = pipeline.run()
    assert not result.ok
    assert "AuthError" in result.listing["error"]
    (message,) = received(pipeline, reports)
    notification = json.loads(message["Body"])
    assert "CRITICAL" in notification["Subject"]
    assert "bootstrap_credentials" in notification["Message"]
    assert result.report["outcome"] == "CRITICAL"


def test_a_duplicated_message_uploads_once(local) -> None:
    pipeline = local(videos(3, size=6 * MIB))
    listing = pipeline.list()
    medium = pipeline.simulator.library[0]
    duplicate = DownloadMessage.create(
        run_id=listing["run_id"],
        correlation_id="dup-test",
        provider="gopro",
        media_id=medium.id,
        filename=medium.filename,
        captured_at=medium.captured_at.isoformat().replace("+00:00", "Z"),
        media_type="video",
    )
    for _ in range(2):
        pipeline.client("sqs").send_message(QueueUrl=pipeline.settings.queue_url, MessageBody=duplicate.to_json())
    drained, _ = pipeline.drain(timeout=120)
    assert drained
    key = object_key("gopro", medium.id, medium.captured_at, medium.filename)
    assert s3_objects(pipeline)[key] == 1
    assert sha256_of(pipeline, key) == pipeline.simulator.source_sha256(medium.id)


def test_a_video_failing_three_times_lands_in_the_dlq_recorded_failed(local) -> None:
    pipeline = local(videos(3, size=6 * MIB))
    broken = pipeline.simulator.library[1].id
    pipeline.simulator.faults.cut_connection(after_bytes=64 * 1024, count=None, media_id=broken)
    reports = capture_reports(pipeline)
    visibility: list[int] = []
    pipeline.client("sqs").meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibility",
        lambda params, **_: visibility.append(params["VisibilityTimeout"]),
    )
    result = pipeline.run(timeout=120)
    assert not result.ok
    # The downloader shortened the 90-minute wait before each retry (the local consumer then sets 0).
    assert [v for v in visibility if v] == list(resources.RETRY_VISIBILITY_SECONDS)
    record = pipeline.app.state.media.get("gopro", broken)
    assert record.status is MediaStatus.FAILED
    assert record.attempts == 3
    assert "cut short" in (record.last_error or "") or "Size" in (record.last_error or "")
    dead = dlq_messages(pipeline)
    assert [json.loads(m["Body"])["media_id"] for m in dead] == [broken]
    assert not any(broken in key for key in s3_objects(pipeline))
    uploads = pipeline.client("s3").list_multipart_uploads(Bucket=pipeline.settings.bucket_name)
    assert uploads.get("Uploads", []) == []  # given-up uploads were aborted
    assert result.report["outcome"] == "PARTIAL"
    assert [f["media_id"] for f in result.report["failures"]] == [broken]
    (message,) = received(pipeline, reports)
    assert "PARTIAL" in json.loads(message["Body"])["Subject"]


def test_a_checksum_refused_by_s3_never_becomes_completed(local) -> None:
    pipeline = local(videos(2, size=6 * MIB))
    victim = pipeline.simulator.library[0].id
    s3 = pipeline.client("s3")  # the same cached client the downloader's transfer engine uses

    def bad_digest(params: dict[str, Any], **_: Any) -> Any:
        if victim in params.get("url_path", ""):
            response = AWSResponse("https://s3", 400, {}, None)
            return response, {"Error": {"Code": "BadDigest", "Message": "checksum mismatch"}}
        return None

    s3.meta.events.register("before-call.s3.UploadPart", bad_digest)
    try:
        result = pipeline.run(timeout=120)
    finally:
        s3.meta.events.unregister("before-call.s3.UploadPart", bad_digest)
    record = pipeline.app.state.media.get("gopro", victim)
    assert record.status is MediaStatus.FAILED
    assert "Checksum" in (record.last_error or "")
    assert not any(victim in key for key in s3_objects(pipeline))
    assert result.report["synced"] == 1


def test_the_summary_sends_once_when_invoked_twice(local) -> None:
    pipeline = local(videos(2))
    reports = capture_reports(pipeline)
    result = pipeline.run()
    assert result.ok
    assert pipeline.summarise() == {"published": False}
    (message,) = received(pipeline, reports)
    notification = json.loads(message["Body"])
    assert notification["Subject"].startswith("[gopro-sync dev] OK: 2 archived")
    assert '"synced": 2' in notification["Message"]


def test_poison_messages_go_to_the_dlq_once_with_their_reason(local) -> None:
    pipeline = local(videos(2))
    sqs = pipeline.client("sqs")
    pipeline.list()
    sqs.send_message(QueueUrl=pipeline.settings.queue_url, MessageBody="this is not json")
    sqs.send_message(QueueUrl=pipeline.settings.queue_url, MessageBody=json.dumps({"schema_version": 99}))
    drained, stats = pipeline.drain(timeout=120)
    assert drained
    dead = dlq_messages(pipeline)
    assert len(dead) == 2
    for message in dead:
        attributes = message["MessageAttributes"]
        assert attributes[POISON_REASON_ATTRIBUTE]["StringValue"]
        assert attributes["receive_count"]["StringValue"] == "1"  # not retried three times first
    assert {m["Body"] for m in dead} == {"this is not json", json.dumps({"schema_version": 99})}
    counts = pipeline.app.state.media.count_by_status()
    assert counts[MediaStatus.COMPLETED] == 2  # the good messages of the same queue went on
    assert stats.failed_records == 0


def test_run_local_command_ends_with_a_report_and_exit_zero(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOPRO_", "AWS_"))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.local_runtime",
            "--videos",
            "5",
            "--video-size",
            "2MB",
            "--report-json",
            str(report),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "every queued video was archived" in done.stdout
    document = json.loads(report.read_text())
    assert document["ok"] is True
    assert document["report"]["source_deleted"] == 1
    assert document["report"]["retried"] >= 1
    assert document["report"]["synced"] == 5  # 5 videos, one deleted at the source, plus make demo's BurstVideo
