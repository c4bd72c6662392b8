"""The second provider through the unchanged downloader handler, over a real moto server: the medium lands under
its own S3 prefix and state key, next to a GoPro medium with the same id that stays untouched."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.app import App
from pipeline.aws_clients import clear_client_cache
from pipeline.config import EnvVar, Settings
from pipeline.handlers.downloader import process_event
from pipeline.messages import DownloadMessage
from pipeline.observability.metrics import MetricsEmitter
from pipeline.providers.gopro.api import NAME as GOPRO
from pipeline.providers.http_manifest.api import NAME as MANIFEST
from pipeline.providers.http_manifest.config import ManifestEnv
from pipeline.services.sidecar import sidecar_key
from pipeline.state import MediaStatus, StateStore, ensure_table
from tests.fixtures.aws import MotoStack
from tests.fixtures.state import seed_pending
from tests.unit.providers.manifest_server import ManifestServer

pytestmark = pytest.mark.integration
SAME_ID = "GX010042abc"
BUCKET = "archive-under-test"
TABLE = "tracker-under-test"


@pytest.fixture
def server() -> Iterator[ManifestServer]:
    running = ManifestServer().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def app(aws: MotoStack, server: ManifestServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    clear_client_cache()
    monkeypatch.setenv(ManifestEnv.URL, server.url("/manifest.json"))
    ensure_table(aws.client("dynamodb"), TABLE)
    aws.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})
    dlq = aws.client("sqs").create_queue(QueueName="dlq-under-test")["QueueUrl"]
    settings = Settings.from_env(
        {
            EnvVar.AWS_ENDPOINT_URL: aws.endpoint_url,
            EnvVar.AWS_REGION: aws.region,
            EnvVar.TABLE_NAME: TABLE,
            EnvVar.BUCKET_NAME: BUCKET,
            EnvVar.DLQ_URL: dlq,
            EnvVar.QUEUE_URL: dlq,
            EnvVar.LOCAL_MODE: "true",  # plain http from a loopback server, as with the simulator
            # The provider reads its own settings from the environment the settings were read from.
            ManifestEnv.URL: server.url("/manifest.json"),
        }
    )
    application = App(settings)
    application.__dict__["metrics"] = MetricsEmitter("Test", {}, stream=io.StringIO())
    yield application
    clear_client_cache()


def sqs_event(message: DownloadMessage, receive_count: int = 1) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{message.provider}-{message.media_id}",
                "receiptHandle": "rh",
                "body": message.to_json(),
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
            }
        ]
    }


def test_the_downloader_archives_a_manifest_medium_beside_a_gopro_one(
    app: App, aws: MotoStack, server: ManifestServer
) -> None:
    content = random.Random(7).randbytes(300_000)
    server.media("/files/clip.mp4", content)
    server.manifest(
        "/manifest.json",
        [
            {
                "id": SAME_ID,
                "filename": "clip.mp4",
                "size": len(content),
                "captured_at": "2025-01-05T10:00:00Z",
                "url": "/files/clip.mp4",
            }
        ],
    )
    state = StateStore(client=aws.client("dynamodb"), table_name=TABLE)
    # A GoPro medium with the very same id, still pending.
    assert seed_pending(state, GOPRO, SAME_ID, run_id="r-gopro")
    message = DownloadMessage.create(
        run_id="r-manifest",
        correlation_id="c-1",
        provider=MANIFEST,
        media_id=SAME_ID,
        filename="clip.mp4",
        size=len(content),
        captured_at="2025-01-05T10:00:00Z",
    )
    answer = process_event(app, sqs_event(message))
    assert answer == {"batchItemFailures": []}
    key = f"{MANIFEST}/2025/01/05/{SAME_ID}/clip.mp4"
    stored = aws.client("s3").get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == content
    assert stored["Metadata"]["sync-provider"] == MANIFEST
    listed = aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted([key, sidecar_key(key)])  # the medium and its sidecar
    manifest_record = state.media.get(MANIFEST, SAME_ID)
    gopro_record = state.media.get(GOPRO, SAME_ID)
    assert manifest_record is not None
    assert manifest_record.status is MediaStatus.COMPLETED
    assert manifest_record.s3_key == key
    assert gopro_record is not None
    assert gopro_record.status is MediaStatus.PENDING
    assert state.media.count_by_status(provider=MANIFEST)[MediaStatus.COMPLETED] == 1
    assert state.media.count_by_status(provider=GOPRO)[MediaStatus.COMPLETED] == 0


def test_a_medium_gone_from_the_manifest_is_recorded_as_deleted_at_the_source(
    app: App, aws: MotoStack, server: ManifestServer
) -> None:
    server.manifest("/manifest.json", [])
    message = DownloadMessage.create(
        run_id="r-1", correlation_id="c-1", provider=MANIFEST, media_id=SAME_ID, filename="clip.mp4"
    )
    media = StateStore(client=aws.client("dynamodb"), table_name=TABLE).media
    # One 404 is not proof: the medium stays retryable, with the 404 noted for the next attempt.
    assert process_event(app, sqs_event(message))["batchItemFailures"]
    record = media.get(MANIFEST, SAME_ID)
    assert record is not None
    assert (record.status, record.note) == (MediaStatus.PENDING, "not_found")
    # A second 404, and a fresh walk of the manifest without it: confirmed.
    assert process_event(app, sqs_event(message, receive_count=2)) == {"batchItemFailures": []}
    record = media.get(MANIFEST, SAME_ID)
    assert record is not None
    assert (record.status, record.note) == (MediaStatus.COMPLETED, "source_deleted")
