"""Each invariant check fails on a deliberately broken pipeline: proof that the checker can see what it guards.

A check that passes on every pipeline proves nothing; each test here removes one safeguard, provokes the fault
it guards against, and asserts the invariant checker reports the damage (the proofs go into the report).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from devtools.gopro_simulator import MIB
from pipeline.messages import DownloadMessage
from pipeline.queueing import SendReport, SentMessage
from pipeline.services import listing as listing_service
from pipeline.services.downloader import Disposition
from pipeline.state import TransitionRefusal, TransitionResult
from pipeline.transfer import http_body, s3_sink, source
from pipeline.transfer.archive import S3FileTransfer
from pipeline.transfer.checksums import crc32c
from tests.chaos import kill
from tests.chaos.library import library, media_id, standard, video
from tests.chaos.secrets import leaks

pytestmark = pytest.mark.integration


def _proof(chaos: Any, name: str, **kwargs: Any) -> Any:
    run = chaos(kwargs.pop("config", standard()), name=name, family="proof", **kwargs)
    run.proof = True
    return run


def _violations(outcome: Any, needle: str) -> list[str]:
    return [v for v in outcome.violations if needle in v]


def test_without_the_byte_count_check_a_cut_body_is_archived_corrupt_and_caught(
    chaos, monkeypatch: pytest.MonkeyPatch, reliability_report: Any
) -> None:
    def read_without_counting(self: Any, resp: Any, view: memoryview, start: int) -> int:
        """The engine's range read with its byte-count check removed: a short body is padded, not refused."""
        filled = 0
        while filled < len(view):
            try:
                count = http_body.readinto(resp, view[filled : min(len(view), filled + self._chunk)])
            except http_body.READ_ERRORS:
                break
            if not count:
                break
            filled += count
        view[filled:] = bytes(len(view) - filled)
        return crc32c(view)

    monkeypatch.setattr(source.HttpSource, "_read_exact", read_without_counting)
    run = _proof(chaos, "proof: byte-count check removed")
    victim = media_id(1)
    run.night(after_listing=lambda p: p.simulator.faults.cut_connection(after_bytes=300_000, media_id=victim))
    outcome = run.check()
    found = _violations(outcome, "differ from the source")
    assert found
    assert victim in found[0]
    assert outcome.corrupted == 1
    reliability_report.add_proof(
        "archived byte for byte (SHA-256)", "byte-count check removed, body cut", outcome, about="differ"
    )


def test_without_the_abort_a_failed_upload_is_left_open_and_caught(
    chaos, monkeypatch: pytest.MonkeyPatch, reliability_report: Any
) -> None:
    monkeypatch.setattr(s3_sink.S3Sink, "abort", lambda self, reason: None)
    run = _proof(chaos, "proof: abort skipped")
    # A permanent refusal (a transient one is retried by resuming the same, checkpointed upload, which heals a
    # skipped abort): the medium is FAILED, its checkpoint dropped, and the upload must have been aborted.
    run.aws.fail("s3", "UploadPart", "AccessDenied", status=403, count=1, match=lambda p: media_id(1) in p["Key"])
    run.night()
    outcome = run.check()
    assert _violations(outcome, "left open")
    assert outcome.open_uploads == 1
    reliability_report.add_proof(
        "no known multipart upload left open", "abort skipped after a failure", outcome, about="left open"
    )


def test_without_the_idempotency_check_a_redelivery_uploads_again_and_is_caught(
    chaos, monkeypatch: pytest.MonkeyPatch, reliability_report: Any
) -> None:
    monkeypatch.setattr(S3FileTransfer, "existing", lambda self, key, media_id, source: None)
    run = _proof(chaos, "proof: idempotency check removed", consumers=1)
    run.kills.arm(kill.AFTER_UPLOAD_COMPLETE, media_id=media_id(2))
    run.night()
    outcome = run.check()
    assert _violations(outcome, "was uploaded 2 times")
    assert outcome.duplicated == 1
    reliability_report.add_proof(
        "no key uploaded twice", "existing-object check removed, killed after the upload", outcome, about="times"
    )


def test_a_dropped_state_update_leaves_a_record_in_progress_and_is_caught(chaos, reliability_report: Any) -> None:
    run = _proof(chaos, "proof: completion never recorded")
    run.app.state.media.complete = lambda *args, **kwargs: TransitionResult(False, TransitionRefusal.LEASE_LOST)
    run.night()
    outcome = run.check()
    assert _violations(outcome, "IN_PROGRESS with nobody working on it")
    assert outcome.stuck == 3
    reliability_report.add_proof(
        "nothing left IN_PROGRESS", "the COMPLETED write dropped", outcome, about="nobody working on it"
    )


def test_a_final_failure_acknowledged_instead_of_dead_lettered_is_caught(
    chaos, monkeypatch: pytest.MonkeyPatch, reliability_report: Any
) -> None:
    monkeypatch.setattr(Disposition, "acknowledged", property(lambda self: self is not Disposition.RETRY))
    run = _proof(chaos, "proof: final failure acknowledged")
    victim = media_id(2)
    run.night(after_listing=lambda p: p.simulator.faults.cut_connection(64 * 1024, count=None, media_id=victim))
    outcome = run.check()
    assert _violations(outcome, "but no message for it in the DLQ")
    reliability_report.add_proof(
        "FAILED with a reason and a DLQ message", "final failure acknowledged", outcome, about="no message"
    )


def test_a_failure_recorded_without_its_reason_is_caught(chaos, reliability_report: Any) -> None:
    run = _proof(chaos, "proof: failure reason dropped")
    fail = run.app.state.media.fail
    run.app.state.media.fail = lambda provider, media_id_, **kw: fail(provider, media_id_, **{**kw, "error": " "})
    victim = media_id(2)
    run.night(after_listing=lambda p: p.simulator.faults.cut_connection(64 * 1024, count=None, media_id=victim))
    outcome = run.check()
    assert _violations(outcome, "FAILED without a reason")
    reliability_report.add_proof(
        "FAILED with a reason and a DLQ message", "failure reason dropped", outcome, about="without a reason"
    )


def test_a_message_the_lister_drops_silently_is_caught_as_lost(
    chaos, monkeypatch: pytest.MonkeyPatch, reliability_report: Any
) -> None:
    send = listing_service.send_download_messages

    def drop_first(sqs: Any, queue_url: str, messages: list[DownloadMessage], **kwargs: Any) -> SendReport:
        messages = list(messages)
        report = send(sqs, queue_url, messages[1:], **kwargs)
        report.sent.insert(0, SentMessage(messages[0].media_id, "never-sent"))
        return report

    monkeypatch.setattr(listing_service, "send_download_messages", drop_first)
    run = _proof(chaos, "proof: a message dropped", config=library(video(1, 6 * MIB), video(2, 600 * 1024)))
    run.night()
    outcome = run.check()
    assert _violations(outcome, "neither archived nor failed")
    assert outcome.lost == 1
    reliability_report.add_proof(
        "every listed video archived or failed", "lister drops a message", outcome, about="neither"
    )


def test_the_secret_scan_catches_an_unredacted_token(
    chaos, captured_logs: Any, monkeypatch: pytest.MonkeyPatch, reliability_report: Any
) -> None:
    run = _proof(chaos, "proof: redaction removed", config=library(video(1, 600 * 1024)))
    token = run.sim.credentials.access_token
    logger = logging.getLogger("pipeline.providers.gopro.http")
    logger.warning("retrying with Authorization: Bearer %s", token)
    assert not leaks(captured_logs.lines, run.secrets()), "redaction is on: the token is masked"
    monkeypatch.setattr("pipeline.observability.logging.redact", lambda text: text)
    logger.warning("retrying with Authorization: Bearer %s", token)
    found = leaks(captured_logs.lines, run.secrets())
    assert len(found) == 1
    assert token not in found[0]  # the scan's own report never repeats the secret
    captured_logs.discard()  # the leak was the point; the end-of-test scan must not fail on it
    from tests.chaos.invariants import Outcome

    reliability_report.add_proof(
        "no secret in any log line", "log redaction removed", Outcome(violations=[f"leak: {found[0][-60:]}"])
    )
