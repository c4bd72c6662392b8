"""scripts/enqueue_media.py against moto and the GoPro simulator: one message in the lister's schema, or one
clear line and nothing sent."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devtools.gopro_simulator import KB, GoProSimulator, SimMedia
from pipeline.config import EnvVar
from pipeline.credentials.model import ProviderCredentials
from pipeline.messages import SCHEMA_VERSION, parse
from pipeline.providers.gopro.config import GoProEnv
from scripts import _enqueue_media as enqueue_media
from tests.fixtures.state import seed_pending
from tests.scripts.conftest import ENV, NAMES, LocalStack

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
MEDIA_ID = "62NzWRrpPXm7o"
CAPTURED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def sim(gopro_sim: Any, stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> GoProSimulator:
    """A simulator holding MEDIA_ID, with its credentials in the local stack's secret (as after a bootstrap)."""
    simulator = gopro_sim(
        media=[
            SimMedia(id=MEDIA_ID, size=20 * KB, filename="GX010042.MP4", captured_at=CAPTURED, created_at=CAPTURED)
        ]
    )
    monkeypatch.setenv(GoProEnv.API_URL, simulator.base_url)
    monkeypatch.setenv(GoProEnv.AUTH_URL, simulator.base_url)
    monkeypatch.setenv(EnvVar.RETRY_MAX_ATTEMPTS, "1")
    stack.provision()
    creds = simulator.credentials
    stack.put_secret(
        ProviderCredentials(
            access_token=creds.access_token,
            refresh_token=creds.refresh_token,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
        )
    )
    return simulator


def test_sends_one_message_in_the_listers_schema(sim: GoProSimulator, stack: LocalStack, run_script) -> None:
    # The lister saw this medium before: its capture time keeps the S3 key the nightly run would use.
    seed_pending(
        stack.state, "gopro", MEDIA_ID, run_id="r-1", captured_at="2025-03-04T05:06:07.000Z", size=20 * KB
    )
    result = run_script(enqueue_media, stack.args(MEDIA_ID, "--json"))
    assert result.code == 0, result.err
    [raw] = stack.drain(stack.queue_url)
    message = parse(raw["Body"])
    assert message.schema_version == SCHEMA_VERSION
    assert (message.provider, message.media_id, message.filename) == ("gopro", MEDIA_ID, "GX010042.MP4")
    assert message.captured_at == "2025-03-04T05:06:07.000Z"
    assert message.size == 20 * KB
    assert message.run_id.startswith(enqueue_media.MANUAL_RUN_PREFIX + "-")
    assert raw["MessageAttributes"]["correlation_id"]["StringValue"] == message.correlation_id
    assert result.json()["message_id"] == raw["MessageId"]
    assert result.json()["state"] == "PENDING"
    # Noted as the listing notes its own messages, so tonight's listing does not send a second one beside it.
    record = stack.state.media.get("gopro", MEDIA_ID)
    assert record is not None
    assert record.queued_run_id == message.run_id
    assert record.queued_until is not None
    assert record.queued_until > datetime.now(UTC)


def test_a_run_id_can_be_given(sim: GoProSimulator, stack: LocalStack, run_script) -> None:
    result = run_script(enqueue_media, stack.args(MEDIA_ID, "--run-id", "rerun-42"))
    assert result.code == 0, result.err
    assert "enqueued gopro/62NzWRrpPXm7o (GX010042.MP4)" in result.out
    assert "capture date unknown" in result.out
    [raw] = stack.drain(stack.queue_url)
    assert parse(raw["Body"]).run_id == "rerun-42"


def test_an_id_outside_the_alphabet_is_refused_before_any_call(
    sim: GoProSimulator, stack: LocalStack, run_script
) -> None:
    sim.clear_requests()
    result = run_script(enqueue_media, stack.args("../etc/passwd"))
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "invalid media id" in result.err
    assert sim.requests == []
    assert stack.drain(stack.queue_url) == []


def test_a_medium_the_provider_does_not_know_sends_nothing(
    sim: GoProSimulator, stack: LocalStack, run_script
) -> None:
    sim.delete_media(MEDIA_ID)
    result = run_script(enqueue_media, stack.args(MEDIA_ID))
    assert result.code == 3
    assert result.err.count("\n") == 1
    assert f"media {MEDIA_ID} not found at provider gopro" in result.err
    assert stack.drain(stack.queue_url) == []


def test_an_unknown_provider_is_a_usage_error(sim: GoProSimulator, stack: LocalStack, run_script) -> None:
    result = run_script(enqueue_media, stack.args(MEDIA_ID, "--provider", "flickr"))
    assert result.code == 2
    assert "unknown provider 'flickr'" in result.err


def test_a_missing_queue_is_named_in_one_line(stack: LocalStack, run_script, monkeypatch) -> None:
    stack.provision(queues=False)
    result = run_script(enqueue_media, stack.args(MEDIA_ID))
    assert result.code == 3
    assert result.err.count("\n") == 1
    assert f"queue {NAMES.queue} not found" in result.err


def test_missing_permission_is_one_line_and_exit_4(sim: GoProSimulator, stack: LocalStack, run_script) -> None:
    def deny(**_kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: sqs:GetQueueUrl"}},
            "GetQueueUrl",
        )

    stack.context().client("sqs").meta.events.register("before-call.sqs.GetQueueUrl", deny)
    result = run_script(enqueue_media, stack.args(MEDIA_ID))
    assert result.code == 4
    assert result.err.count("\n") == 1
    assert f"not allowed to GetQueueUrl on queue {NAMES.queue}" in result.err


def test_runs_as_a_file_against_the_local_stack(sim: GoProSimulator, stack: LocalStack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOPRO_REFRESH")}
    done = subprocess.run(
        [
            sys.executable,
            "scripts/enqueue_media.py",
            MEDIA_ID,
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
    assert done.returncode == 0, done.stderr
    assert len(stack.drain(stack.queue_url)) == 1
    assert sim.credentials.access_token not in done.stdout + done.stderr


def test_a_missing_credentials_secret_is_one_line_with_the_bootstrap_hint(stack: LocalStack, run_script) -> None:
    stack.provision()
    result = run_script(enqueue_media, stack.args(MEDIA_ID))
    assert result.code == 3
    assert result.err.count("\n") == 1
    assert f"secret '{NAMES.credentials_secret}' does not exist" in result.err
    assert "scripts/bootstrap_credentials.py" in result.err
    assert stack.drain(stack.queue_url) == []


def _seed_completed(stack: LocalStack) -> None:
    state = stack.state
    state.media.claim("gopro", MEDIA_ID, owner="w", run_id="r-1", lease_seconds=60, filename="GX010042.MP4")
    done = state.media.complete(
        "gopro", MEDIA_ID, owner="w", s3_key="gopro/k", size=20 * KB, checksum=None, duration_s=1.0
    )
    assert done.applied


def test_force_resets_a_completed_medium_to_pending_and_enqueues_it(
    sim: GoProSimulator, stack: LocalStack, run_script
) -> None:
    _seed_completed(stack)
    result = run_script(enqueue_media, stack.args(MEDIA_ID, "--force"))
    assert result.code == 0, result.err
    assert "reset from COMPLETED to PENDING (--force)" in result.out
    record = stack.state.media.get("gopro", MEDIA_ID)
    assert record is not None
    assert record.status.value == "PENDING"
    [raw] = stack.drain(stack.queue_url)
    assert parse(raw["Body"]).media_id == MEDIA_ID
    assert record.queued_run_id == parse(raw["Body"]).run_id


def test_without_force_a_completed_medium_stays_completed(
    sim: GoProSimulator, stack: LocalStack, run_script
) -> None:
    _seed_completed(stack)
    result = run_script(enqueue_media, stack.args(MEDIA_ID, "--json"))
    assert result.code == 0, result.err
    assert result.json()["reset_to_pending"] is False
    record = stack.state.media.get("gopro", MEDIA_ID)
    assert record is not None
    assert record.status.value == "COMPLETED"


def test_force_never_takes_a_medium_from_a_live_worker(
    sim: GoProSimulator, stack: LocalStack, run_script, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker holds it right now: the reset is refused with one line; nothing is sent.
    _seed_completed(stack)
    record = stack.state.media.get("gopro", MEDIA_ID)
    assert record is not None
    stack.state.media.reset_to_pending("gopro", MEDIA_ID, completed_too=True)
    stack.state.media.claim("gopro", MEDIA_ID, owner="live", run_id="r-2", lease_seconds=900)
    # The script read the record as COMPLETED a moment before the worker took it: the conditional reset refuses.
    original_get = enqueue_media.StateStore.from_settings

    def stale_store(settings: Any) -> Any:
        store = original_get(settings)
        real_get = store.media.get
        store.media.get = lambda *a, **k: record if a[1] == MEDIA_ID else real_get(*a, **k)  # type: ignore[method-assign]
        return store

    monkeypatch.setattr(enqueue_media.StateStore, "from_settings", staticmethod(stale_store))
    result = run_script(enqueue_media, stack.args(MEDIA_ID, "--force"))
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "cannot reset gopro/62NzWRrpPXm7o to PENDING" in result.err
    assert stack.drain(stack.queue_url) == []
    after = stack.state.media.get("gopro", MEDIA_ID)
    assert after is not None
    assert (after.status.value, after.lease_owner) == ("IN_PROGRESS", "live")
