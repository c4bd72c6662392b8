"""A whole night (lister → SQS → downloaders → summary) with S3, SQS, SNS and Secrets Manager on LocalStack and
DynamoDB on moto, against the GoPro simulator.

The same night as tests/integration/test_pipeline_end_to_end.py's first test, but on an S3 that checks every
CRC32C the engine sends (per part and FULL_OBJECT at completion) and an SQS whose redelivery of the flaky video
is its own. The pipeline takes one endpoint, so `devtools.endpoint_router` stands in front of both emulators
and sends each request to the emulator of its service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awscrt.checksums import crc32c as reference_crc32c

from devtools.endpoint_router import routing
from devtools.gopro_simulator import MB, MediaType
from devtools.local_runtime import LocalPipeline
from devtools.local_runtime.demo import DELETED_ID, FLAKY_ID, apply_scenario, demo_library
from pipeline.config import Settings
from pipeline.keys import object_key
from pipeline.state import NOTE_SOURCE_DELETED, MediaStatus
from pipeline.transfer import Checksum
from tests.emulators.conftest import LocalStackAws
from tests.fixtures.aws import MotoStack

pytestmark = [pytest.mark.integration, pytest.mark.localstack]
MIB = 1024 * 1024
FAST = {
    "part_size_bytes": 5 * MIB,
    "multipart_threshold_bytes": 5 * MIB,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "retry_max_attempts": 3,
}


def remove_resources(pipeline: LocalPipeline, localstack_aws: LocalStackAws) -> None:
    """LocalStack lives for the whole session: leave no bucket, queue, topic or secret for the next test."""
    settings = pipeline.settings
    if settings is None:
        return
    s3 = localstack_aws.s3()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=settings.bucket_name):
        for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=settings.bucket_name, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket=settings.bucket_name)
    sqs = localstack_aws.client("sqs")
    for url in (settings.queue_url, settings.dlq_url):
        sqs.delete_queue(QueueUrl=url)
    localstack_aws.client("sns").delete_topic(TopicArn=settings.topic_arn)
    localstack_aws.client("secretsmanager").delete_secret(
        SecretId=settings.credentials_secret_id, ForceDeleteWithoutRecovery=True
    )


@pytest.fixture
def night(aws: MotoStack, localstack_aws: LocalStackAws, gopro_sim: Any) -> Iterator[LocalPipeline]:
    with routing(localstack_aws.endpoint_url, {"dynamodb": aws.endpoint_url}) as router:
        pipeline = LocalPipeline(
            base_settings=Settings.from_env({}),
            aws_endpoint_url=router.endpoint_url,
            # 4.5 MB: the flaky video (1.1x) stays one PutObject, so its 3 cuts exhaust a delivery as on moto;
            # the two largest (1.3x and the chaptered 1.5x) go multipart.
            simulator=gopro_sim(demo_library(videos=6, video_size=45 * MB // 10)),
            retry_delay=0,
            settings_overrides=FAST,
        )
        try:
            yield pipeline.start()
        finally:
            pipeline.stop()
            remove_resources(pipeline, localstack_aws)


def test_a_full_night_archives_every_video_byte_for_byte_on_localstack(
    night: LocalPipeline, localstack_aws: LocalStackAws
):
    sim = night.simulator
    result = night.run(after_listing=apply_scenario)

    assert result.ok, result
    report = result.report
    assert report is not None
    assert (report["enqueued"], report["synced"], report["source_deleted"]) == (6, 5, 1)
    assert report["retried"] >= 1  # the flaky video failed its first delivery and SQS redelivered it
    assert report["outcome"] == "OK"
    assert result.dlq_depth == 0
    state = night.app.state
    deleted = state.media.get("gopro", DELETED_ID)
    assert (deleted.status, deleted.note) == (MediaStatus.COMPLETED, NOTE_SOURCE_DELETED)
    assert state.media.get("gopro", FLAKY_ID).attempts == 2
    s3, bucket = localstack_aws.s3(), night.settings.bucket_name
    checked = multipart = 0
    for medium in sim.library:
        if medium.type != MediaType.VIDEO:
            continue
        assert state.media.get("gopro", medium.id).status is MediaStatus.COMPLETED
        for item in range(1, medium.items + 1):
            name = medium.filename if medium.items == 1 else f"{Path(medium.filename).stem}_{item:02d}.MP4"
            key = object_key("gopro", medium.id, medium.captured_at, name)
            # ChecksumMode ENABLED: botocore checks the body against the CRC32C LocalStack stored and validated.
            answer = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            body = answer["Body"].read()
            assert hashlib.sha256(body).hexdigest() == sim.source_sha256(medium.id, item=item)
            assert answer["ChecksumCRC32C"] == Checksum.crc32c(reference_crc32c(body)).value
            assert answer.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
            multipart += "-" in answer["ETag"]
            checked += 1
    assert checked == 6  # 4 single-file videos + a chaptered one in 2 files
    assert multipart == 3  # the 1.3x video and both files of the chaptered one: UploadPart + Complete
    versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
    assert not any(DELETED_ID in v["Key"] for v in versions)
