"""scripts/redrive_dlq.py's native path (SQS StartMessageMoveTask) for real, on LocalStack's SQS.

moto lacks StartMessageMoveTask, so against moto the script falls back to its selective move and the native path
is only tested with botocore stubs (tests/scripts/test_redrive_dlq.py). Here SQS is LocalStack, DynamoDB stays on
moto: each client finds its own endpoint through botocore's per-service variables (AWS_ENDPOINT_URL_SQS,
AWS_ENDPOINT_URL_DYNAMODB), since the script is given no --endpoint-url. The messages reach the DLQ the way they
do in AWS: received MAX_RECEIVE_COUNT times without being deleted, then moved by SQS's own redrive policy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline import resources
from pipeline.aws_clients import clear_client_cache
from pipeline.messages import DownloadMessage, parse
from pipeline.state import MediaStatus, StateStore, ensure_table
from scripts import _redrive_dlq as redrive_dlq
from scripts.cli.app import run_as_script
from tests.emulators.conftest import LocalStackAws
from tests.fixtures.aws import MotoStack

pytestmark = [pytest.mark.integration, pytest.mark.localstack]

ENV = "dev"
NAMES = resources.names_for(ENV)
PROVIDER = "gopro"
MEDIA = ("GX0100000001", "GX0100000002", "GX0100000003")


def message_for(media_id: str) -> DownloadMessage:
    return DownloadMessage.create(
        run_id="20260101T020000Z-abcdef01",
        correlation_id=f"corr-{media_id}",
        provider=PROVIDER,
        media_id=media_id,
        filename=f"{media_id}.MP4",
        size=1000,
        captured_at="2026-01-01T10:00:00Z",
    )


class Queues:
    """The download queue and its DLQ on LocalStack, made as the pipeline makes them (names, RedrivePolicy)."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.dlq_url = sqs.create_queue(QueueName=NAMES.dead_letter_queue)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(resources.MAX_RECEIVE_COUNT)}
        self.queue_url = sqs.create_queue(QueueName=NAMES.queue, Attributes={"RedrivePolicy": json.dumps(policy)})[
            "QueueUrl"
        ]

    def receive(self, url: str, *, visibility: int | None = None) -> list[dict[str, Any]]:
        extra = {} if visibility is None else {"VisibilityTimeout": visibility}
        return self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["ApproximateReceiveCount"],
            **extra,
        ).get("Messages", [])

    def fail_until_dead_lettered(self, expected: int) -> dict[str, int]:
        """Receives the download queue's messages without deleting them (a downloader failing each time) until
        SQS has moved all `expected` to the DLQ; returns the receive count each message had reached."""
        receives: dict[str, int] = {}
        deadline = time.monotonic() + 30
        while self.depth(self.dlq_url) < expected:
            assert time.monotonic() < deadline, f"SQS redrive did not happen; receive counts {receives}"
            for message in self.receive(self.queue_url, visibility=0):
                media_id = parse(message["Body"]).media_id
                receives[media_id] = int(message["Attributes"]["ApproximateReceiveCount"])
        return receives

    def depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def delete(self) -> None:
        for url in (self.queue_url, self.dlq_url):
            self.sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def split_endpoints(
    aws: MotoStack, localstack_aws: LocalStackAws, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """SQS on LocalStack, DynamoDB on (a freshly reset) moto, for every client the pipeline and scripts make."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", localstack_aws.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", aws.endpoint_url)
    clear_client_cache()
    yield
    clear_client_cache()


@pytest.fixture
def queues(split_endpoints: None, localstack_aws: LocalStackAws) -> Iterator[Queues]:
    made = Queues(localstack_aws.client("sqs"))
    yield made
    made.delete()  # LocalStack lives for the whole session; the next test may reuse these names


@pytest.fixture
def state(split_endpoints: None, aws: MotoStack) -> StateStore:
    ensure_table(aws.client("dynamodb"), NAMES.table)
    return StateStore(client=aws.client("dynamodb"), table_name=NAMES.table, sleep=lambda _s: None)


def status(state: StateStore, media_id: str) -> MediaStatus:
    record = state.media.get(PROVIDER, media_id)
    assert record is not None
    return record.status


def test_the_native_move_returns_dead_lettered_messages_to_the_download_queue(
    queues: Queues, state: StateStore, capsys: pytest.CaptureFixture[str]
):
    for media_id in MEDIA:
        message = message_for(media_id)
        state.media.claim(PROVIDER, media_id, owner="worker", run_id=message.run_id, lease_seconds=60)
        state.media.fail(PROVIDER, media_id, owner="worker", error="ProviderUnavailable: HTTP 503")
        attributes = message.message_attributes()
        body = message.to_json()
        queues.sqs.send_message(QueueUrl=queues.queue_url, MessageBody=body, MessageAttributes=attributes)
    receives = queues.fail_until_dead_lettered(len(MEDIA))
    assert receives == dict.fromkeys(MEDIA, resources.MAX_RECEIVE_COUNT)
    assert queues.depth(queues.queue_url) == 0

    code = run_as_script(
        redrive_dlq.NAME,
        ["--env", ENV, "--json", "--poll-seconds", "0.2", "--wait-seconds", "0", "--hold-seconds", "30"],
    )

    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["mode"] == "native", report["notes"]
    assert report["native_task"]["Status"] == "COMPLETED"
    assert report["native_task"]["ApproximateNumberOfMessagesMoved"] == len(MEDIA)
    assert sorted(entry["media_id"] for entry in report["moved"]) == sorted(MEDIA)
    back = queues.receive(queues.queue_url)
    assert sorted(parse(m["Body"]).media_id for m in back) == sorted(MEDIA)
    # Moved server-side, attributes and all.
    expected_attributes = message_for(MEDIA[0]).message_attributes()
    for message in back:
        assert set(message["MessageAttributes"]) == set(expected_attributes)
    assert queues.receive(queues.dlq_url) == []
    assert {status(state, m) for m in MEDIA} == {MediaStatus.PENDING}
