"""scripts/sync_status.py against a real moto server: counts, the last run, failures, work in progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.state import Checksum, MediaStatus
from scripts import _sync_status as sync_status
from scripts.cli.errors import EXIT_FINDINGS
from tests.fixtures.state import seed_pending
from tests.scripts.conftest import ENV, NAMES, LocalStack

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PROVIDER = "gopro"
RUN_ID = "20260102T020000Z-0123abcd"


def seed(stack: LocalStack) -> None:
    """2 COMPLETED, 1 FAILED, 1 PENDING, 2 IN_PROGRESS (one live lease, one crashed worker), one run, queues."""
    stack.provision()
    state = stack.state
    now = datetime.now(UTC)
    state.runs.create(RUN_ID, correlation_id="c-1", started_at=now - timedelta(hours=1), provider=PROVIDER)
    state.runs.update(RUN_ID, listed=6, enqueued=4, synced=2, failed=1, bytes_transferred=3_000_000)
    state.runs.add_content_hosts(RUN_ID, {"media.cdn.example", "a.cdn.example"})
    for media_id in ("DONE000001", "DONE000002"):
        state.media.claim(PROVIDER, media_id, owner="w", run_id=RUN_ID, lease_seconds=60)
        state.media.complete(
            PROVIDER,
            media_id,
            owner="w",
            s3_key=f"gopro/x/{media_id}",
            size=1,
            checksum=Checksum("CRC32C", "AA=="),
            duration_s=1.0,
        )
    state.media.claim(PROVIDER, "FAIL000001", owner="w", run_id=RUN_ID, lease_seconds=60)
    state.media.fail(PROVIDER, "FAIL000001", owner="w", error="ProviderUnavailable: HTTP 503 after 5 attempts")
    assert seed_pending(state, PROVIDER, "WAIT000001", run_id=RUN_ID)
    state.media.claim(
        PROVIDER, "LIVE000001", owner="w1", run_id=RUN_ID, lease_seconds=900, now=now - timedelta(minutes=5)
    )
    state.media.claim(
        PROVIDER, "GONE000001", owner="w2", run_id=RUN_ID, lease_seconds=60, now=now - timedelta(hours=2)
    )
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="{}")
    sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}")


def test_json_status_reports_counts_run_failures_and_progress(stack: LocalStack, run_script) -> None:
    seed(stack)
    result = run_script(sync_status, stack.args("--json"))
    assert result.code == EXIT_FINDINGS, result.err  # a failed medium and a dead letter: the check says so
    status = result.json()
    assert status["counts"] == {"PENDING": 1, "IN_PROGRESS": 2, "COMPLETED": 2, "FAILED": 1}
    assert status["total"] == 6
    assert status["queues"] == {
        "downloads": {"visible": 1, "in_flight": 0},
        "dead_letter": {"visible": 1, "in_flight": 0},
    }
    last = status["last_run"]
    assert (last["run_id"], last["synced"], last["failed"], last["bytes_transferred"]) == (RUN_ID, 2, 1, 3_000_000)
    assert last["content_hosts"] == ["a.cdn.example", "media.cdn.example"]
    [failed] = status["failed"]
    assert failed["media_id"] == "FAIL000001"
    assert failed["error"] == "ProviderUnavailable: HTTP 503 after 5 attempts"
    progress = {entry["media_id"]: entry for entry in status["in_progress"]}
    assert progress["LIVE000001"]["lease_expired"] is False
    assert 290 <= progress["LIVE000001"]["age_seconds"] <= 400
    assert progress["GONE000001"]["lease_expired"] is True
    assert progress["GONE000001"]["age_seconds"] >= 7200


def test_text_status_is_readable(stack: LocalStack, run_script) -> None:
    seed(stack)
    result = run_script(sync_status, stack.args())
    assert result.code == EXIT_FINDINGS, result.err
    assert "media: PENDING 1  IN_PROGRESS 2  COMPLETED 2  FAILED 1  (total 6)" in result.out
    assert f"last run: {RUN_ID} (gopro)" in result.out
    assert "synced 2 (3.0 MB)" in result.out
    assert "gopro/FAIL000001  attempts 1" in result.out
    assert "error: ProviderUnavailable: HTTP 503 after 5 attempts" in result.out
    assert "gopro/GONE000001  for 2h00m  lease expired" in result.out
    assert "download hosts of the last run: a.cdn.example, media.cdn.example" in result.out


def test_an_empty_archive_says_so(stack: LocalStack, run_script) -> None:
    stack.provision()
    result = run_script(sync_status, stack.args())
    assert result.code == 0, result.err
    assert "last run: none recorded" in result.out
    assert "download hosts" not in result.out


def test_a_missing_table_is_one_line_and_exit_3(stack: LocalStack, run_script) -> None:
    stack.provision(table=False)
    result = run_script(sync_status, stack.args())
    assert result.code == 3
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert f"table {NAMES.table} not found" in result.err


def test_runs_as_a_file_from_the_repository_root(stack: LocalStack) -> None:
    seed(stack)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOPRO_")}
    done = subprocess.run(
        [
            sys.executable,
            "scripts/sync_status.py",
            "--json",
            "--env",
            ENV,
            "--endpoint-url",
            stack.aws.endpoint_url,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_FINDINGS, done.stderr
    assert done.stderr == ""
    assert '"COMPLETED": 2' in done.stdout
    assert MediaStatus.FAILED.value in done.stdout


def test_failed_media_alone_make_the_check_fail_and_a_clean_archive_passes(stack: LocalStack, run_script) -> None:
    stack.provision()
    state = stack.state
    state.media.claim(PROVIDER, "DONE000001", owner="w", run_id=RUN_ID, lease_seconds=60)
    state.media.complete(
        PROVIDER,
        "DONE000001",
        owner="w",
        s3_key="gopro/x/1",
        size=1,
        checksum=Checksum("CRC32C", "AA=="),
        duration_s=1,
    )
    assert run_script(sync_status, stack.args()).code == 0
    state.media.claim(PROVIDER, "FAIL000001", owner="w", run_id=RUN_ID, lease_seconds=60)
    state.media.fail(PROVIDER, "FAIL000001", owner="w", error="ProviderUnavailable: HTTP 503")
    assert run_script(sync_status, stack.args()).code == EXIT_FINDINGS


def test_a_dead_letter_alone_makes_the_check_fail(stack: LocalStack, run_script) -> None:
    stack.provision()
    stack.client("sqs").send_message(QueueUrl=stack.dlq_url, MessageBody="{}")
    assert run_script(sync_status, stack.args()).code == EXIT_FINDINGS


def test_an_unknown_provider_is_a_usage_error(stack: LocalStack, run_script) -> None:
    stack.provision()
    result = run_script(sync_status, stack.args("--provider", "nope"))
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert "unknown provider 'nope'" in result.err


def test_jsonl_streams_the_summary_then_one_object_per_medium(stack: LocalStack, run_script) -> None:
    seed(stack)
    result = run_script(sync_status, stack.args("--jsonl"))
    assert result.code == EXIT_FINDINGS
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [line["record"] for line in lines] == ["summary", "failed", "in_progress", "in_progress"]
    assert lines[0]["counts"]["FAILED"] == 1
    assert lines[1]["media_id"] == "FAIL000001"
