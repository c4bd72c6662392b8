"""Crash-safe transfers and fail-fast (issue 12, points 1 and 2): a kill deep into a transfer, a worker killed on
every receive, a medium left IN_PROGRESS with no message, and the permanent refusals that must not spend three
receives. Each scenario has a twin run on a pipeline with the fix removed, showing the scenario would catch it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from devtools.gopro_simulator import MIB
from devtools.gopro_simulator import server as sim_server
from pipeline.providers.base import DownloadSource
from pipeline.services import downloader as downloader_service
from pipeline.state import MediaStatus
from pipeline.state.media_reads import MediaReads
from pipeline.transfer.job import TransferJob
from tests.chaos import kill
from tests.chaos.aws_faults import api_params
from tests.chaos.library import library, media_id, standard, video

pytestmark = pytest.mark.integration
FAMILY = "crash safety"
PART = 5 * MIB  # the suite's part size (harness.FAST)
TIB = 1024 * 1024 * MIB


# --- kill -9 deep into a transfer, then the resume ---------------------------------------------------------------


def _killed_mid_transfer(run: Any) -> dict[str, int]:
    """One night with the victim's invocation killed at UploadPart 20; what was uploaded before the kill, and how
    many bytes of the source were read more than once in all."""
    victim = media_id(1)
    uploaded: list[tuple[int, int]] = []  # (invocation, bytes) of every UploadPart S3 accepted

    def part_done(http_response: Any, context: dict[str, Any], **_: Any) -> None:
        if getattr(http_response, "status_code", 500) < 300:
            uploaded.append((len(run.kills.invocations), int(api_params(context)["ContentLength"])))

    run.client("s3").meta.events.register("after-call.s3.UploadPart", part_done)
    run.kills.arm(kill.MID_TRANSFER, media_id=victim)
    run.night()
    assert run.kills.kills == [(kill.MID_TRANSFER, victim)]
    served = sum(r.bytes_sent for r in run.sim.requests_to("content") if r.method == "GET")
    return {
        "size": run.sim.media(victim).size,
        "uploaded_before_kill": sum(size for invocation, size in uploaded if invocation == 1),
        "read_again": served - run.sim.media(victim).size,
    }


def _long_video_run(chaos: Any, name: str) -> Any:
    # 24 parts, two in flight: the kill at part 20 finds about 19 parts in S3.
    return chaos(
        library(video(1, 24 * PART)), name=name, family=FAMILY, consumers=1, overrides={"transfer_window": 2}
    )


def test_killed_deep_into_a_transfer_the_successor_resumes_the_same_upload(chaos) -> None:
    run = _long_video_run(chaos, "kill -9 at part 20 of 24, then the resume")
    numbers = _killed_mid_transfer(run)
    outcome = run.verify()
    assert outcome.completed == 1
    assert (outcome.open_uploads, outcome.orphaned_uploads) == (0, 0)  # the one upload, resumed and completed
    assert numbers["uploaded_before_kill"] >= 15 * PART
    # What the successor read again: the parts after the last progress checkpoint (moto's ListParts gives no
    # part checksums; S3 does, and then only the parts in flight at the kill are read again).
    assert numbers["read_again"] < numbers["uploaded_before_kill"] / 2, numbers
    assert len(run.ledger.uploads) == 1


def test_proof_without_progress_checkpoints_a_kill_throws_the_transfer_away(
    chaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TransferJob, "save_progress", lambda self, force=False: None)
    run = _long_video_run(chaos, "proof: no progress checkpoints")
    run.proof = True
    numbers = _killed_mid_transfer(run)
    outcome = run.check()
    assert numbers["read_again"] >= numbers["uploaded_before_kill"], numbers  # everything downloaded again
    assert outcome.orphaned_uploads == 1  # and the first upload left open, unknown to the pipeline


# --- killed on every receive -------------------------------------------------------------------------------------


def _killed_on_every_receive(chaos: Any, name: str) -> tuple[Any, str]:
    run = chaos(standard(), name=name, family=FAMILY, consumers=1)
    victim = media_id(1)
    run.kills.arm(kill.MID_PART, media_id=victim, times=3)
    result = run.night()
    assert len(run.kills.kills) == 3
    assert result.dlq_depth == 1
    return run, victim


def test_killed_on_every_receive_ends_failed_beside_its_dlq_message(chaos) -> None:
    run, victim = _killed_on_every_receive(chaos, "killed on all three receives")
    record = run.app.state.media.get("gopro", victim)
    assert record.status is MediaStatus.FAILED
    assert "last receive" in (record.last_error or "")
    outcome = run.check()
    # The DLQ message and the record agree; the only thing open is the upload the FAILED record keeps for the
    # next attempt (a redrive), which resumes it:
    assert outcome.failed == 1
    assert outcome.stuck == 0
    assert [v for v in outcome.violations if "checkpointed upload" not in v] == []
    run.next_night(full=True)  # a FAILED medium is the operator's to redrive: no listing sends a second message
    assert run.app.state.media.get("gopro", victim).status is MediaStatus.FAILED
    _redrive(run)
    run.next_night()
    done = run.verify()
    assert done.completed == 3
    assert done.open_uploads == 0


def _redrive(run: Any) -> None:
    """What `scripts/redrive_dlq.py` does: every DLQ message back to the queue, its record PENDING."""
    sqs = run.client("sqs")
    while True:
        found = sqs.receive_message(QueueUrl=run.settings.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        if not found:
            return
        for message in found:
            body = json.loads(message["Body"])
            assert run.app.state.media.reset_to_pending(body["provider"], body["media_id"])
            sqs.send_message(QueueUrl=run.settings.queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=run.settings.dlq_url, ReceiptHandle=message["ReceiptHandle"])


def test_proof_without_the_last_receive_record_a_killed_worker_leaves_it_in_progress(
    chaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = chaos(standard(), name="proof: last receive not recorded up front", family="proof", consumers=1)
    run.proof = True
    claim = run.app.state.media.claim

    def claim_without_final(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("final_error", None)
        return claim(*args, **kwargs)

    run.app.state.media.claim = claim_without_final
    run.kills.install(run.app, run.client)  # the kill point wraps the claim it now sees
    victim = media_id(1)
    run.kills.arm(kill.MID_PART, media_id=victim, times=3)
    run.night()
    outcome = run.check()
    assert run.app.state.media.get("gopro", victim).status is MediaStatus.IN_PROGRESS
    assert [v for v in outcome.violations if "neither archived nor failed" in v]


# --- a medium left IN_PROGRESS with no message -------------------------------------------------------------------


def _strand(run: Any, victim: str) -> None:
    """After the listing: the victim's worker claimed it and died, and its message is gone (expired)."""
    sqs, url = run.client("sqs"), run.settings.queue_url
    batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in batch:
        body = json.loads(message["Body"])
        if body["media_id"] != victim:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
            continue
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        run.app.state.media.claim(  # as the downloader claims: with the listing's facts from the message
            "gopro",
            victim,
            owner="dead-worker",
            run_id=body["run_id"],
            lease_seconds=960,
            filename=body["filename"],
            captured_at=body.get("captured_at"),
            size=body.get("size"),
        )


def _stranded_run(chaos: Any, name: str) -> tuple[Any, str]:
    run = chaos(library(video(1, 600 * 1024), video(2, 700 * 1024)), name=name, family=FAMILY)
    victim = media_id(1)
    run.night(after_listing=lambda _pipeline: _strand(run, victim))
    assert run.app.state.media.get("gopro", victim).status is MediaStatus.IN_PROGRESS
    run.next_night()  # incremental: nothing new is listed, and the lease ran out a day ago
    return run, victim


def test_a_medium_left_in_progress_past_its_lease_is_queued_by_the_next_incremental_night(chaos) -> None:
    run, _victim = _stranded_run(chaos, "IN_PROGRESS past its lease, no message")
    assert run.nights[-1].listing["enqueued"] == 1
    assert run.verify().completed == 2


def test_proof_without_the_re_enqueue_it_waits_for_the_weekly_reconcile(
    chaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MediaReads, "list_abandoned", lambda self, *args, **kwargs: [])
    run, victim = _stranded_run(chaos, "proof: no re-enqueue of expired leases")
    run.proof = True
    outcome = run.check()
    assert [v for v in outcome.violations if victim in v and "IN_PROGRESS" in v]


# --- fail fast on what retrying cannot fix -----------------------------------------------------------------------


def _dead_letters(run: Any) -> list[dict[str, Any]]:
    """The DLQ's messages with their attributes (made visible again for the invariant checker)."""
    sqs, url = run.client("sqs"), run.settings.dlq_url
    found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    )
    for message in found:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


def _unsafe_link(run: Any, monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    provider = run.app.provider()
    resolve = provider.resolve_download

    def hijacked(media_id_: str, **kwargs: Any) -> Any:
        plan = resolve(media_id_, **kwargs)
        if media_id_ != victim:
            return plan
        evil = DownloadSource(url="https://169.254.169.254/latest/meta-data/", filename="a.mp4", content_type="x")
        return type(plan)(media_id=plan.media_id, filename=plan.filename, files=(evil,))

    monkeypatch.setattr(provider, "resolve_download", hijacked)


def _html_descriptor(run: Any, monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    download = sim_server._Handler._download

    def maintenance_page(self: Any, media_id_: str) -> None:
        if media_id_ != victim:
            download(self, media_id_)
            return
        self._send(200, b"<html><body>Down for maintenance</body></html>", "text/html")

    monkeypatch.setattr(sim_server._Handler, "_download", maintenance_page)


PERMANENT = {
    "unsafe URL": (6 * MIB, _unsafe_link, "refusing download URL"),
    # Over S3's 5 TiB: the listing gives no size (a message refuses one that large), the source's HEAD does.
    "too big for S3": (6 * TIB, None, "object limit"),
    "non-JSON answer": (6 * MIB, _html_descriptor, "not JSON"),
}


def _permanent_run(chaos: Any, monkeypatch: pytest.MonkeyPatch, kind: str, name: str) -> tuple[Any, str, Any]:
    size, fault, _reason = PERMANENT[kind]
    first = replace(video(1, size), file_size_known=size < 5 * TIB)
    run = chaos(library(first, video(2, 600 * 1024)), name=name, family=FAMILY)
    victim = media_id(1)
    if fault is not None:
        fault(run, monkeypatch, victim)
    return run, victim, run.night()


@pytest.mark.parametrize("kind", list(PERMANENT))
def test_a_permanent_error_reaches_the_dlq_on_its_first_receive_with_its_reason(
    chaos, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    run, victim, night = _permanent_run(chaos, monkeypatch, kind, f"permanent error: {kind}")
    reason = PERMANENT[kind][2]
    outcome = run.verify()
    assert (outcome.completed, outcome.failed) == (1, 1)
    record = run.app.state.media.get("gopro", victim)
    assert record.attempts == 1
    assert reason in (record.last_error or "")
    assert night.consumer_stats.failed_records == 0  # not one receive handed back to SQS
    [dead] = _dead_letters(run)
    assert json.loads(dead["Body"])["media_id"] == victim
    assert dead["MessageAttributes"]["receive_count"]["StringValue"] == "1"
    assert reason in dead["MessageAttributes"]["poison_reason"]["StringValue"]
    if kind == "too big for S3":
        assert not [r for r in run.sim.requests_to("content") if r.method == "GET" and r.media_id == victim]


def test_proof_without_fail_fast_a_permanent_error_spends_three_receives(
    chaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader_service, "fails_fast", lambda exc: False)
    run, victim, night = _permanent_run(chaos, monkeypatch, "unsafe URL", "proof: no fail-fast")
    run.proof = True
    assert run.app.state.media.get("gopro", victim).attempts == 3
    assert night.consumer_stats.failed_records == 3


def test_a_transient_error_keeps_its_three_receives(chaos) -> None:
    run = chaos(library(video(1, 600 * 1024)), name="transient error on every receive", family=FAMILY)
    run.sim.faults.server_errors(count=None, status=503, endpoint="content")
    night = run.night()
    outcome = run.verify()
    assert outcome.failed == 1
    record = run.app.state.media.get("gopro", media_id(1))
    assert record.attempts == 3
    assert "503" in (record.last_error or "")
    assert night.consumer_stats.failed_records == 3  # every receive handed back; the third goes to the DLQ
