"""scripts/redrive_dlq.py against a real moto server: the selective move for real, the native one mocked at the
botocore level (moto lacks StartMessageMoveTask), and crashes between send and delete that lose nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.messages import DownloadMessage, parse
from pipeline.queueing import POISON_REASON_ATTRIBUTE, send_to_dead_letter
from pipeline.state import MediaStatus
from scripts import _redrive_dlq as redrive_dlq
from tests.scripts.conftest import LocalStack, Result

pytestmark = pytest.mark.integration
PROVIDER = "gopro"
MEDIA = ("GX0100000001", "GX0100000002", "GX0100000003")
FAST = ("--wait-seconds", "0", "--hold-seconds", "30")


class Crash(BaseException):
    """A process dying mid-way: nothing in the script may catch it."""


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


def seed(stack: LocalStack, media: tuple[str, ...] = MEDIA, *, poison: bool = True) -> dict[str, str]:
    """FAILED media whose messages sit in the DLQ (as after three receives), plus one poison message; returns
    the bodies by media id."""
    stack.provision()
    sqs, state = stack.client("sqs"), stack.state
    bodies = {}
    for media_id in media:
        message = message_for(media_id)
        state.media.claim(PROVIDER, media_id, owner="worker", run_id=message.run_id, lease_seconds=60)
        state.media.fail(PROVIDER, media_id, owner="worker", error="ProviderUnavailable: HTTP 503")
        bodies[media_id] = message.to_json()
        sqs.send_message(
            QueueUrl=stack.dlq_url, MessageBody=bodies[media_id], MessageAttributes=message.message_attributes()
        )
    if poison:
        send_to_dead_letter(sqs, stack.dlq_url, "{not json", "not_json: JSONDecodeError", "m-poison", 1)
    return bodies


def media_in(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(
        parse(m["Body"]).media_id
        for m in messages
        if POISON_REASON_ATTRIBUTE not in m.get("MessageAttributes", {})
    )


def status(stack: LocalStack, media_id: str) -> MediaStatus:
    record = stack.state.media.get(PROVIDER, media_id)
    assert record is not None
    return record.status


def hook(stack: LocalStack, event: str, handler: Callable[..., Any], *, single_attempt: bool = False) -> None:
    """Registers a botocore handler on the very client the script will use (the clients are cached)."""
    ctx = stack.context()
    client = ctx.client("sqs", max_attempts=1) if single_attempt else ctx.client("sqs")
    client.meta.events.register(event, handler)


# --- the selective path, for real ------------------------------------------------------------------------------


def test_selected_media_move_are_reset_and_the_rest_stay_visible(stack: LocalStack, run_script) -> None:
    bodies = seed(stack)
    result: Result = run_script(redrive_dlq, stack.args("--media-id", MEDIA[0], "--media-id", MEDIA[1], *FAST))
    assert result.code == 0, result.err
    assert "moved 2 message(s)" in result.out
    assert f"moved {PROVIDER}/{MEDIA[0]}, record PENDING" in result.out
    assert "left 1 poison message(s)" in result.out
    moved = stack.drain(stack.queue_url)
    assert media_in(moved) == sorted(MEDIA[:2])
    # Same body, attributes forwarded (correlation id), nothing of the DLQ's own.
    by_id = {parse(m["Body"]).media_id: m for m in moved}
    assert by_id[MEDIA[0]]["Body"] == bodies[MEDIA[0]]
    assert by_id[MEDIA[0]]["MessageAttributes"]["correlation_id"]["StringValue"] == f"corr-{MEDIA[0]}"
    left = stack.drain(stack.dlq_url)  # released at once, no need to wait for the hold
    assert media_in(left) == [MEDIA[2]]
    assert len(left) == 2
    assert [status(stack, m) for m in MEDIA] == [MediaStatus.PENDING, MediaStatus.PENDING, MediaStatus.FAILED]


def test_dry_run_moves_nothing_and_changes_nothing(stack: LocalStack, run_script) -> None:
    seed(stack)
    result = run_script(redrive_dlq, stack.args("--dry-run", "--json", *FAST))
    assert result.code == 0, result.err
    report = result.json()
    assert report["dry_run"] is True
    assert sorted(entry["media_id"] for entry in report["moved"]) == sorted(MEDIA)
    assert report["poison_left"] == 1
    assert stack.drain(stack.queue_url) == []
    assert len(stack.drain(stack.dlq_url)) == 4
    assert {status(stack, m) for m in MEDIA} == {MediaStatus.FAILED}


def test_max_limits_the_move(stack: LocalStack, run_script) -> None:
    seed(stack, poison=False)
    result = run_script(redrive_dlq, stack.args("--max", "1", "--json", *FAST))
    assert result.code == 0, result.err
    assert len(result.json()["moved"]) == 1
    assert result.json()["over_max_left"] == 2
    assert len(stack.drain(stack.queue_url)) == 1
    assert len(stack.drain(stack.dlq_url)) == 2


def test_without_filters_poison_makes_the_move_selective_and_is_left_behind(stack: LocalStack, run_script) -> None:
    seed(stack)
    result = run_script(redrive_dlq, stack.args(*FAST))
    assert result.code == 0, result.err
    assert "poison messages, which a native move would take along" in result.out
    assert "left 1 poison message(s)" in result.out
    assert media_in(stack.drain(stack.queue_url)) == sorted(MEDIA)
    left = stack.drain(stack.dlq_url)
    assert [m["MessageAttributes"][POISON_REASON_ATTRIBUTE]["StringValue"] for m in left] == [
        "not_json: JSONDecodeError"
    ]


def test_against_moto_the_native_move_is_reported_unsupported_and_done_selectively(
    stack: LocalStack, run_script
) -> None:
    seed(stack)
    result = run_script(redrive_dlq, stack.args("--include-poison", *FAST))
    assert result.code == 0, result.err
    assert "does not implement StartMessageMoveTask" in result.out
    assert "moved 4 message(s)" in result.out
    assert len(stack.drain(stack.queue_url)) == 4
    assert stack.drain(stack.dlq_url) == []
    assert {status(stack, m) for m in MEDIA} == {MediaStatus.PENDING}


# --- the native path, mocked at the botocore level -------------------------------------------------------------


class FakeHttp:
    status_code = 200
    headers: dict[str, str] = {}


def install_native_move(stack: LocalStack, *, final_status: str = "COMPLETED") -> dict[str, Any]:
    """StartMessageMoveTask moves the DLQ for real (as SQS would), ListMessageMoveTasks reports RUNNING then
    `final_status`; only these two operations are intercepted, every other call reaches moto."""
    calls: dict[str, Any] = {"start": [], "list": 0, "moved": 0}

    def start(params: dict[str, Any], **_kwargs: Any) -> tuple[FakeHttp, dict[str, Any]]:
        calls["start"].append(json.loads(params["body"]))  # the serialized request (SQS speaks JSON)
        if final_status == "COMPLETED":
            raw = stack.client("sqs")
            for message in stack.drain(stack.dlq_url):
                raw.send_message(
                    QueueUrl=stack.queue_url,
                    MessageBody=message["Body"],
                    MessageAttributes={
                        k: {"DataType": v["DataType"], "StringValue": v["StringValue"]}
                        for k, v in message.get("MessageAttributes", {}).items()
                    },
                )
                calls["moved"] += 1
        return FakeHttp(), {"TaskHandle": "task-handle-1"}

    def listing(params: dict[str, Any], **_kwargs: Any) -> tuple[FakeHttp, dict[str, Any]]:
        calls["list"] += 1
        if calls["list"] == 1:
            return FakeHttp(), {"Results": [{"TaskHandle": "task-handle-1", "Status": "RUNNING"}]}
        entry = {"Status": final_status, "ApproximateNumberOfMessagesMoved": calls["moved"]}
        if final_status != "COMPLETED":
            entry["FailureReason"] = "AWS.SimpleQueueService.DestinationQueueFull"
        return FakeHttp(), {"Results": [entry]}

    hook(stack, "before-call.sqs.StartMessageMoveTask", start, single_attempt=True)
    hook(stack, "before-call.sqs.ListMessageMoveTasks", listing)
    return calls


def test_no_filter_uses_the_native_move_task_and_follows_it_to_completion(stack: LocalStack, run_script) -> None:
    seed(stack, poison=False)
    calls = install_native_move(stack)
    result = run_script(redrive_dlq, stack.args("--poll-seconds", "0", "--json", *FAST))
    assert result.code == 0, result.err
    report = result.json()
    assert report["mode"] == "native"
    assert report["native_task"]["Status"] == "COMPLETED"
    assert sorted(entry["media_id"] for entry in report["moved"]) == sorted(MEDIA)
    assert calls["list"] == 2
    [start] = calls["start"]
    assert start["SourceArn"].endswith(f":{stack.names.dead_letter_queue}")
    assert start["DestinationArn"].endswith(f":{stack.names.queue}")
    assert media_in(stack.drain(stack.queue_url)) == sorted(MEDIA)
    assert {status(stack, m) for m in MEDIA} == {MediaStatus.PENDING}


def test_a_failed_native_task_is_one_clear_line_and_resets_nothing(stack: LocalStack, run_script) -> None:
    seed(stack, poison=False)
    install_native_move(stack, final_status="FAILED")
    result = run_script(redrive_dlq, stack.args("--poll-seconds", "0", *FAST))
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "move task ended FAILED: AWS.SimpleQueueService.DestinationQueueFull" in result.err
    assert {status(stack, m) for m in MEDIA} == {MediaStatus.FAILED}


# --- failures between send and delete lose nothing ------------------------------------------------------------


def test_a_crash_between_send_and_delete_leaves_a_duplicate_not_a_loss(stack: LocalStack, run_script) -> None:
    seed(stack, media=MEDIA[:1], poison=False)

    def crash(**_kwargs: Any) -> None:
        raise Crash

    hook(stack, "before-call.sqs.DeleteMessage", crash)
    with pytest.raises(Crash):  # a process dying: the one-line error handling does not catch it either
        run_script(redrive_dlq, stack.args("--media-id", MEDIA[0], "--wait-seconds", "0", "--hold-seconds", "1"))
    assert media_in(stack.drain(stack.queue_url)) == [MEDIA[0]]
    time.sleep(1.1)  # the hold runs out: the DLQ copy is visible again
    assert media_in(stack.drain(stack.dlq_url)) == [MEDIA[0]]


def test_a_failed_send_deletes_nothing(stack: LocalStack, run_script) -> None:
    seed(stack, poison=False)

    def refuse(**_kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "KMS.DisabledException", "Message": "key disabled"}}, "SendMessage")

    hook(stack, "before-call.sqs.SendMessage", refuse)
    result = run_script(redrive_dlq, stack.args("--max", "3", *FAST))
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "KMS.DisabledException" in result.err
    assert stack.drain(stack.queue_url) == []
    assert media_in(stack.drain(stack.dlq_url)) == sorted(MEDIA)  # released at once
    assert {status(stack, m) for m in MEDIA} == {MediaStatus.FAILED}


def test_an_unconfirmed_send_keeps_the_dlq_copy(stack: LocalStack, run_script) -> None:
    seed(stack, media=MEDIA[:1], poison=False)

    def garble(parsed: dict[str, Any], **_kwargs: Any) -> None:
        parsed["MD5OfMessageBody"] = "0" * 32

    hook(stack, "after-call.sqs.SendMessage", garble)
    result = run_script(redrive_dlq, stack.args("--media-id", MEDIA[0], *FAST))
    assert result.code == 1
    assert "did not confirm" in result.err
    assert media_in(stack.drain(stack.dlq_url)) == [MEDIA[0]]


def test_a_failed_delete_is_reported_as_a_duplicate(stack: LocalStack, run_script) -> None:
    seed(stack, media=MEDIA[:1], poison=False)

    def refuse(**_kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ReceiptHandleIsInvalid", "Message": "expired"}}, "DeleteMessage")

    hook(stack, "before-call.sqs.DeleteMessage", refuse)
    result = run_script(
        redrive_dlq, stack.args("--media-id", MEDIA[0], "--wait-seconds", "0", "--hold-seconds", "1")
    )
    assert result.code == 1
    assert "a duplicate the downloader will absorb" in result.out
    assert media_in(stack.drain(stack.queue_url)) == [MEDIA[0]]
    time.sleep(1.1)
    assert media_in(stack.drain(stack.dlq_url)) == [MEDIA[0]]


def test_an_empty_dlq_moves_nothing(stack: LocalStack, run_script) -> None:
    stack.provision()
    result = run_script(redrive_dlq, stack.args(*FAST))
    assert result.code == 0, result.err
    assert "the dead-letter queue is empty" in result.out
