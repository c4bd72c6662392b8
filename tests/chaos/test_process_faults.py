"""Process faults: the downloader killed at every step, duplicate delivery, two downloaders on one medium, and
the Lambda deadline arriving mid-transfer."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from devtools.gopro_simulator import MIB
from pipeline.services.downloader import CONTINUATION_ATTRIBUTE, deadline_safety_seconds
from tests.chaos import kill
from tests.chaos.library import library, media_id, standard, video

pytestmark = pytest.mark.integration
# Also worth running, but slower or less central: in the long set (make chaos), not in make test.
LONG = pytest.mark.chaos_long
FAMILY = "process"
STEPS = (
    kill.AFTER_CLAIM,
    kill.MID_PART,
    kill.AFTER_UPLOAD_COMPLETE,
    kill.AFTER_STATE_COMPLETE,
    kill.BEFORE_DELETE,
)


@pytest.mark.parametrize("point", STEPS)
def test_the_downloader_killed_at_each_step(chaos, point: str) -> None:
    run = chaos(standard(), name=f"killed {point}", family=FAMILY, consumers=1)
    victim = media_id(1)  # three parts: the kill mid-part leaves one uploaded, one refused, one not started
    run.kills.arm(point, media_id=victim)
    run.night()
    outcome = run.verify()
    assert run.kills.kills == [(point, victim)]
    assert outcome.completed == 3
    # The upload was checkpointed when it was created: the redelivery resumes it, nothing is left orphaned.
    assert outcome.orphaned_uploads == 0
    finished_first = point in (kill.AFTER_STATE_COMPLETE, kill.BEFORE_DELETE)  # the redelivery finds it COMPLETED
    assert run.app.state.media.get("gopro", victim).attempts == (1 if finished_first else 2)


@LONG
def test_killed_twice_then_archived_on_the_last_receive(chaos) -> None:
    run = chaos(standard(), name="killed on two receives in a row", family=FAMILY, consumers=1)
    victim = media_id(1)
    run.kills.arm(kill.MID_PART, media_id=victim)
    run.kills.arm(kill.AFTER_UPLOAD_COMPLETE, media_id=victim)
    result = run.night()
    assert run.verify().completed == 3
    assert len(run.kills.kills) == 2
    assert result.dlq_depth == 0


def test_a_message_delivered_three_times(chaos) -> None:
    run = chaos(standard(), name="duplicate delivery (x3)", family=FAMILY)
    sqs = run.client("sqs")
    copies: list[dict[str, Any]] = []

    def triple(pipeline: Any) -> None:
        """At-least-once delivery: every message arrives three times, two of them while the first is worked."""
        while True:
            batch = sqs.receive_message(QueueUrl=run.settings.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                break
            copies.extend(batch)
        for message in copies:
            for _ in range(3):
                sqs.send_message(QueueUrl=run.settings.queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=run.settings.queue_url, ReceiptHandle=message["ReceiptHandle"])

    result = run.night(after_listing=triple)
    assert len(copies) == 3
    assert result.consumer_stats.records == 9
    assert run.verify().completed == 3


def test_two_downloaders_claim_the_same_medium_at_the_same_instant(chaos) -> None:
    run = chaos(
        library(video(1, 11 * MIB)),
        name="two downloaders on one medium (racing claims)",
        family=FAMILY,
        consumers=2,
    )
    state = run.app.state
    claim = state.media.claim
    both_there = threading.Barrier(2, timeout=30)
    answers: list[str] = []

    def racing_claim(*args: Any, **kwargs: Any) -> Any:
        both_there.wait()  # the two deliveries reach the conditional write together
        result = claim(*args, **kwargs)
        answers.append(result.outcome.value)
        return result

    state.media.claim = racing_claim

    def duplicate(pipeline: Any) -> None:
        sqs = run.client("sqs")
        message = sqs.receive_message(QueueUrl=run.settings.queue_url)["Messages"][0]
        sqs.send_message(QueueUrl=run.settings.queue_url, MessageBody=message["Body"])
        sqs.change_message_visibility(
            QueueUrl=run.settings.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

    run.night(after_listing=duplicate)
    assert sorted(answers) == ["claimed", "leased_elsewhere"]
    assert run.verify().completed == 1


def _slow_library() -> Any:
    # 20 MiB at 4 MiB/s per connection, two parts at a time: about 2.5 s of transfer in all, in two rounds.
    return library(video(1, 20 * MIB), video(2, 600 * 1024), bandwidth=4 * MIB)


def _deadline_overrides() -> dict[str, Any]:
    return {"transfer_window": 2, "http_read_timeout": 2}


def _lambda_timeout(overrides: dict[str, Any]) -> float:
    """Invocations with 4.5 s before the safety margin: one round of two parts fits, two rounds do not."""
    return deadline_safety_seconds(_settings_with(overrides)) + 4.5


def _settings_with(overrides: dict[str, Any]) -> Any:
    from pipeline.config import Settings

    return Settings().with_overrides(**overrides)


def test_the_deadline_arrives_mid_transfer(chaos) -> None:
    overrides = _deadline_overrides()
    run = chaos(
        _slow_library(),
        name="deadline mid-transfer (slow but progressing)",
        family=FAMILY,
        overrides=overrides,
        lambda_timeout=_lambda_timeout(overrides),
    )
    sent: list[dict[str, Any]] = []
    run.client("sqs").meta.events.register(
        "provide-client-params.sqs.SendMessage", lambda params, **_: sent.append(params)
    )
    result = run.night()
    assert run.verify().completed == 2
    continued = [p for p in sent if CONTINUATION_ATTRIBUTE in p.get("MessageAttributes", {})]
    assert continued, "the transfer should have needed more than one invocation"
    assert result.consumer_stats.failed_records == 0  # no receive spent on the deadline
    assert result.dlq_depth == 0
    ranged = [r for r in run.sim.requests_to("content") if r.method == "GET" and "Range" in r.headers]
    assert len(ranged) == 4 + 1  # every part fetched once (the small video is one ranged GET too)


@LONG
@pytest.mark.parametrize("point", [kill.AFTER_CHECKPOINT, kill.AFTER_CONTINUATION])
def test_killed_at_the_deadline_handover(chaos, point: str) -> None:
    overrides = _deadline_overrides()
    run = chaos(
        _slow_library(),
        name=f"killed {point}",
        family=FAMILY,
        overrides=overrides,
        lambda_timeout=_lambda_timeout(overrides),
        consumers=1,
    )
    run.kills.arm(point, media_id=media_id(1))
    result = run.night()
    assert run.kills.kills == [(point, media_id(1))]
    assert run.verify().completed == 2
    assert result.dlq_depth == 0


@LONG
def test_a_second_listing_while_the_first_night_still_drains(chaos) -> None:
    run = chaos(standard(), name="overlapping nights (listing while draining)", family=FAMILY)
    s3 = run.client("s3")
    relisted: list[dict[str, Any]] = []

    def list_again(params: dict[str, Any], **_: Any) -> None:
        if not relisted:
            relisted.append(run.pipeline.list({"source": "aws.scheduler", "full_reconcile": True}))

    s3.meta.events.register("before-call.s3.CompleteMultipartUpload", list_again)
    run.night()
    assert relisted
    # Every medium of the first night still has its live message (issue 12): the second listing sends none.
    assert relisted[0]["enqueued"] == 0
    assert run.verify().completed == 3
