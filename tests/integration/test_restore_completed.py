"""The `s3:ObjectRestore:Completed` handler over the moto server: S3 events in, one SNS message per request out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.app import App
from pipeline.config import EnvVar, Settings
from pipeline.handlers.restore_completed import restore_completed
from pipeline.services.restore_ledger import RestoreLedger, RestoreObject, RestoreRequest
from pipeline.state import ensure_table

pytestmark = pytest.mark.integration
TABLE = "gopro-sync-restore-test"
KEYS = ("gopro/2025/07/15/aa02/GX010002.MP4", "gopro/2025/07/15/aa02/GX020002 copy.MP4")


def s3_event(*keys: str, name: str = "ObjectRestore:Completed") -> dict[str, Any]:
    """What S3 sends to a Lambda destination (keys URL-encoded, a space as '+')."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": name,
                "s3": {"bucket": {"name": "archive"}, "object": {"key": key.replace(" ", "+"), "size": 1}},
                "glacierEventData": {
                    "restoreEventData": {
                        "lifecycleRestorationExpiryTime": "2026-12-08T00:00:00.000Z",
                        "lifecycleRestoreStorageClass": "DEEP_ARCHIVE",
                    }
                },
            }
            for key in keys
        ]
    }


@pytest.fixture
def wired(aws):
    ensure_table(aws.client("dynamodb"), TABLE)
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    settings = Settings.from_env(
        {EnvVar.AWS_ENDPOINT_URL: aws.endpoint_url, EnvVar.TABLE_NAME: TABLE, EnvVar.TOPIC_ARN: topic}
    )
    ledger = RestoreLedger(aws.client("dynamodb"), TABLE)
    ledger.record(
        RestoreRequest(
            request_id="r1",
            tier="Standard",
            days=7,
            requested_at="2026-12-01T10:00:00.000Z",
            objects=tuple(RestoreObject(k, "aa02", k.rsplit("/", 1)[-1], 1000) for k in KEYS),
        )
    )

    def messages() -> list[dict[str, Any]]:
        found = []
        while batch := sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            for m in batch:
                found.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])
        return found

    return App(settings), ledger, messages


def test_one_message_when_the_last_object_of_a_request_is_ready_and_never_twice(wired) -> None:
    app, ledger, messages = wired
    first = restore_completed(app, s3_event(KEYS[0]))
    assert first == {"ready": 1, "unknown": 0, "published": []}
    assert messages() == []  # one chapter of two: nothing to fetch yet
    again = restore_completed(app, s3_event(KEYS[0]))  # S3 delivers at least once
    assert again["published"] == []
    assert ledger.get("r1").ready == 1
    last = restore_completed(app, s3_event(KEYS[1]))
    assert last["published"] == ["r1"]
    sent = messages()
    assert len(sent) == 1
    body = sent[0]["Message"]
    assert "aa02: GX010002.MP4, GX020002 copy.MP4" in body
    assert "restore.py fetch --env dev --media-id aa02" in body
    assert "2026-12-08T00:00:00.000Z" in body
    assert "1 media restored" in sent[0]["Subject"]
    restore_completed(app, s3_event(*KEYS))  # a redelivery of both
    assert messages() == []


def eventbridge_event(key: str) -> dict[str, Any]:
    """The same event as the stack's EventBridge rule delivers it."""
    return {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Restore Completed",
        "detail": {
            "version": "0",
            "bucket": {"name": "archive"},
            "object": {"key": key, "size": 1000},
            "restore-expiry-time": "2026-12-08T00:00:00Z",
            "source-storage-class": "DEEP_ARCHIVE",
        },
    }


def test_the_eventbridge_form_of_the_event_counts_the_same(wired) -> None:
    app, _, messages = wired
    assert restore_completed(app, eventbridge_event(KEYS[0]))["ready"] == 1
    assert restore_completed(app, eventbridge_event(KEYS[1]))["published"] == ["r1"]
    assert "Readable until 2026-12-08T00:00:00Z" in messages()[0]["Message"]


def test_other_events_and_objects_no_request_asked_for_send_nothing(wired) -> None:
    app, _, messages = wired
    assert restore_completed(app, s3_event(KEYS[0], name="ObjectRestore:Post"))["ready"] == 0
    assert restore_completed(app, s3_event("gopro/other/key.MP4")) == {"ready": 0, "unknown": 1, "published": []}
    assert restore_completed(app, {"not": "an s3 event"})["ready"] == 0
    assert messages() == []


def test_a_message_that_could_not_be_sent_is_sent_by_the_retry(wired, monkeypatch) -> None:
    app, ledger, messages = wired
    restore_completed(app, s3_event(KEYS[0]))
    service = app.restore_completed()
    sns = service._sns

    def down(**_kwargs: Any) -> None:
        raise ConnectionError("sns unreachable")

    monkeypatch.setattr(sns, "publish", down)
    with pytest.raises(ConnectionError):
        service.handle(
            [
                *__import__("pipeline.services.restore_completed", fromlist=["x"]).restored_objects(
                    s3_event(KEYS[1])
                )
            ]
        )
    monkeypatch.undo()
    assert ledger.get("r1").notified_at is None
    assert restore_completed(app, s3_event(KEYS[1]))["published"] == ["r1"]
    assert len(messages()) == 1
