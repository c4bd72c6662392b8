"""Incremental nightly listing from the cursor's high-water mark, and the weekly full reconcile behind it.

Each night is `run_listing` with an explicit `now`, against moto and the simulator. When a test needs a night's
media archived, `archive_queued` takes their messages and records them COMPLETED, as the downloaders would (the
downloads themselves are tested elsewhere, and would cost seconds here).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.gopro_simulator import KB, GoProSimulator, SimMedia, SimulatorConfig
from devtools.local_runtime import LocalPipeline
from pipeline import aws_clients, resources
from pipeline.config import Settings
from pipeline.deadline import Deadline
from pipeline.handlers.lister import run_listing
from pipeline.services.listing_models import ListingCursor

pytestmark = pytest.mark.integration

NIGHT_1 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
# A token valid for weeks: a night then needs no refresh, whose own calls (lock, secret write) are the
# credentials module's cost, not the listing's.
LONG_TOKENS = {"access_token_ttl": 60 * 86400}


def medium(index: int, created: datetime, **extra: Any) -> SimMedia:
    return SimMedia(id=f"ee{index:022x}", size=10 * KB, captured_at=created, created_at=created, **extra)


def library(count: int) -> list[SimMedia]:
    return [medium(i, datetime(2025, 2, 1, tzinfo=UTC) + i * timedelta(hours=1)) for i in range(count)]


@pytest.fixture
def night(aws: Any, gopro_sim: Any) -> Iterator[Any]:
    started: list[LocalPipeline] = []

    def start(media: list[SimMedia], **overrides: Any) -> LocalPipeline:
        sim = gopro_sim(SimulatorConfig(media=media, **LONG_TOKENS))
        pipeline = LocalPipeline(
            base_settings=Settings.from_env({}),
            aws_endpoint_url=aws.endpoint_url,
            simulator=sim,
            retry_delay=0,
            settings_overrides=overrides,
        ).start()
        started.append(pipeline)
        return pipeline

    yield start
    for pipeline in started:
        pipeline.stop()


class AwsCalls:
    """Counts every AWS API call (botocore `before-call`) of the pipeline's cached clients."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        for client in list(aws_clients._clients.values()):
            client.meta.events.register("before-call", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def listen(pipeline: LocalPipeline, now: datetime, event: dict[str, Any] | None = None) -> tuple[dict, AwsCalls]:
    """One night's listing (and its continuations), with the AWS calls it made."""
    for service in ("dynamodb", "sqs", "sns", "secretsmanager", "lambda"):
        pipeline.client(service)  # create every client first, so the counter sees them all
    calls = AwsCalls()
    payload: dict[str, Any] = event or {"source": "aws.scheduler", "id": f"evt-{now.isoformat()}"}
    outcome = run_listing(pipeline.app, payload, now=now)
    return outcome, calls


def queued(pipeline: LocalPipeline) -> list[str]:
    """Media ids waiting in the download queue (consumes the messages)."""
    ids = []
    sqs = pipeline.client("sqs")
    while True:
        batch = sqs.receive_message(
            QueueUrl=pipeline.settings.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        if not batch.get("Messages"):
            return ids
        ids.extend(json.loads(m["Body"])["media_id"] for m in batch["Messages"])
        sqs.delete_message_batch(
            QueueUrl=pipeline.settings.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch["Messages"])],
        )


def archive_queued(pipeline: LocalPipeline) -> list[str]:
    """Take the queued messages and record their media COMPLETED, as the downloaders would."""
    ids = queued(pipeline)
    for media_id in ids:
        pipeline.client("dynamodb").put_item(
            TableName=pipeline.settings.table_name,
            Item={
                resources.TABLE_PARTITION_KEY: {"S": resources.media_key("gopro", media_id)},
                "provider": {"S": "gopro"},
                "media_id": {"S": media_id},
                "status": {"S": "COMPLETED"},
                "sync_timestamp": {"S": "2025-03-01T03:00:00.000Z"},
            },
        )
    return ids


def cursor(pipeline: LocalPipeline) -> ListingCursor:
    return ListingCursor.from_json(pipeline.app.state.cursors.get("gopro"))


def test_a_night_with_nothing_new_costs_one_provider_call_and_two_aws_calls(night) -> None:
    media = library(5)
    pipeline = night(media)
    sim: GoProSimulator = pipeline.simulator
    first, _ = listen(pipeline, NIGHT_1)
    assert (first["mode"], first["enqueued"]) == ("full", 5)
    assert archive_queued(pipeline)
    assert cursor(pipeline).high_water_mark == media[-1].created_at
    latest_before = pipeline.app.state.runs.latest(1, provider="gopro")[0].run_id
    sim.clear_requests()

    quiet, calls = listen(pipeline, NIGHT_1 + DAY)

    assert (quiet["mode"], quiet["listed"], quiet["enqueued"]) == ("incremental", 0, 0)
    assert len(sim.requests_to("search")) == 1
    assert sim.requests_to("token") == []
    # The cursor read, the status-index query for media left IN_PROGRESS past their lease (re-enqueued whatever
    # the mode), plus the credentials read in a cold Lambda (this warm process has them already): within 3. The
    # PENDING media are not read: the cursor says none waits and no message can have expired yet
    # (`backlog_clear_until`); the budget is not measured: nothing was to be queued.
    assert calls.calls["dynamodb.GetItem"] == 1
    assert calls.calls["dynamodb.Query"] == 1
    assert set(calls.calls) <= {"dynamodb.GetItem", "dynamodb.Query", "secretsmanager.GetSecretValue"}
    assert calls.total <= 3, calls.calls
    assert pipeline.app.state.runs.latest(1, provider="gopro")[0].run_id == latest_before  # no run record
    assert pipeline.app.state.runs.get(quiet["run_id"]) is None


def test_new_media_are_listed_alone_and_move_the_mark(night) -> None:
    media = library(30)
    pipeline = night(media, list_page_size=10)
    listen(pipeline, NIGHT_1)
    assert len(queued(pipeline)) == 30
    new = [medium(100 + i, NIGHT_1 + i * timedelta(minutes=5)) for i in range(3)]
    for item in new:
        pipeline.simulator.add_media(item)
    pipeline.simulator.clear_requests()

    outcome, calls = listen(pipeline, NIGHT_1 + DAY)

    assert (outcome["mode"], outcome["listed"], outcome["enqueued"]) == ("incremental", 3, 3)
    assert sorted(queued(pipeline)) == sorted(item.id for item in new)
    # The search asks for what was created after the mark and up to the night's start: one page of 3.
    (search,) = pipeline.simulator.requests_to("search")
    assert search.query["created_range"] == ["2025-02-02T05:00:00Z,2025-03-02T02:00:00Z"]
    assert calls.calls["dynamodb.BatchGetItem"] == 1
    assert cursor(pipeline).high_water_mark == new[-1].created_at
    run = pipeline.app.state.runs.get(outcome["run_id"])
    assert (run.listed, run.enqueued, run.listing_done) == (3, 3, True)
    assert pipeline.app.state.runs.latest(1, provider="gopro")[0].run_id == outcome["run_id"]


def test_the_weekly_reconcile_catches_a_medium_an_incremental_night_missed(night) -> None:
    media = library(4)
    pipeline = night(media)
    listen(pipeline, NIGHT_1)
    assert archive_queued(pipeline)
    # Appears in the library with a created_at older than the mark (say, listed late by the cloud): incremental
    # nights cannot see it.
    missed = medium(50, media[0].created_at + timedelta(minutes=30))
    pipeline.simulator.add_media(missed)

    for day in range(1, 6):
        outcome, _ = listen(pipeline, NIGHT_1 + day * DAY)
        assert (outcome["mode"], outcome["enqueued"]) == ("incremental", 0)
    assert queued(pipeline) == []

    reconcile, calls = listen(pipeline, NIGHT_1 + 7 * DAY)  # a week after the last full listing

    assert reconcile["mode"] == "full"
    assert (reconcile["listed"], reconcile["already_archived"], reconcile["enqueued"]) == (5, 4, 1)
    assert queued(pipeline) == [missed.id]
    assert cursor(pipeline).last_full_reconcile_at == NIGHT_1 + 7 * DAY
    assert calls.calls["dynamodb.BatchGetItem"] == 1
    # The reconcile is a report night even when little is queued; the next night is incremental again.
    assert listen(pipeline, NIGHT_1 + 8 * DAY)[0]["mode"] == "incremental"


def test_a_forced_or_disabled_incremental_listing_is_full(night) -> None:
    pipeline = night(library(3), full_reconcile_days=0)
    listen(pipeline, NIGHT_1)
    assert archive_queued(pipeline)
    again, _ = listen(pipeline, NIGHT_1 + DAY)
    assert (again["mode"], again["already_archived"]) == ("full", 3)
    run = pipeline.app.state.runs.get(again["run_id"])
    assert run.report_sent_at  # nothing queued on a full night: the lister reported it (as before)

    other = night(library(2))
    listen(other, NIGHT_1)
    forced, _ = listen(other, NIGHT_1 + DAY, {"source": "aws.scheduler", "full_reconcile": True})
    assert forced["mode"] == "full"


def test_a_quiet_night_reports_when_asked_to(night) -> None:
    pipeline = night(library(2), report_quiet_nights=True)
    listen(pipeline, NIGHT_1)
    assert archive_queued(pipeline)
    quiet, calls = listen(pipeline, NIGHT_1 + DAY)
    assert quiet["mode"] == "incremental"
    run = pipeline.app.state.runs.get(quiet["run_id"])
    assert run.report_sent_at
    assert calls.calls["sns.Publish"] == 1


def test_a_medium_still_processing_holds_the_mark_until_it_is_ready(night) -> None:
    pipeline = night(library(2))
    listen(pipeline, NIGHT_1)
    assert len(queued(pipeline)) == 2
    processing = medium(60, NIGHT_1 + timedelta(minutes=1), ready_to_view="transcoding")
    later = medium(61, NIGHT_1 + timedelta(minutes=2))
    pipeline.simulator.add_media(processing)
    pipeline.simulator.add_media(later)

    second, _ = listen(pipeline, NIGHT_1 + DAY)
    assert (second["enqueued"], second["skipped"]) == (1, {"not_ready": 1})
    assert queued(pipeline) == [later.id]
    assert cursor(pipeline).high_water_mark < processing.created_at  # kept below the medium still processing

    pipeline.simulator.set_ready_state(processing.id, "ready")
    third, _ = listen(pipeline, NIGHT_1 + 2 * DAY)
    assert third["mode"] == "incremental"
    # Not `later` again: its record notes the second night's message as live (queued_until), and a medium never
    # gets a second live message (this test consumed it without archiving; it waits for its retention to pass).
    assert queued(pipeline) == [processing.id]
    assert cursor(pipeline).high_water_mark == later.created_at


def test_a_continued_incremental_listing_keeps_its_mode(night) -> None:
    pipeline = night(library(6), list_page_size=2)
    listen(pipeline, NIGHT_1)
    assert archive_queued(pipeline)
    new = [medium(200 + i, NIGHT_1 + i * timedelta(minutes=1)) for i in range(5)]
    for item in new:
        pipeline.simulator.add_media(item)

    payload: dict[str, Any] = {"source": "aws.scheduler"}
    outcomes = []
    while True:
        outcome = run_listing(pipeline.app, payload, deadline=Deadline.in_seconds(1), now=NIGHT_1 + DAY)
        outcomes.append(outcome)
        if outcome["done"]:
            break
        assert cursor(pipeline).in_progress is not None
        run = pipeline.app.state.runs.get(outcome["run_id"])
        payload = {
            "continuation": {
                "run_id": run.run_id,
                "correlation_id": run.correlation_id,
                "page": outcome["next_page"],
            }
        }

    assert {o["mode"] for o in outcomes} == {"incremental"}
    # The search's created_range holds the five new media: pages 1-2 two each, page 3 the fifth (the last).
    assert len(outcomes) == 3
    assert sorted(queued(pipeline)) == sorted(item.id for item in new)
    after = cursor(pipeline)
    assert after.in_progress is None
    assert after.high_water_mark == new[-1].created_at
    assert after.last_full_reconcile_at == NIGHT_1  # an incremental listing is not a reconcile
    run = pipeline.app.state.runs.get(outcomes[0]["run_id"])
    assert (run.listed, run.enqueued, run.listing_done) == (5, 5, True)
