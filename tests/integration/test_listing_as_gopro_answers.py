"""The nightly listing against a simulator that answers as the live service does (issue 11, point 2).

Every night is the lister as Lambda runs it, against moto and the simulator; the queued messages are read back
(downloads are `test_two_nights_as_gopro_answers.py`'s business). Each test names the handling it proves; each was
checked to fail with that handling removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.gopro_simulator import KB, AbsurdKind, SimMedia, SimulatorConfig, every_type_library
from devtools.local_runtime import LocalPipeline
from pipeline.clock import utc_now
from pipeline.config import Settings
from pipeline.deadline import Deadline
from pipeline.handlers.lister import run_listing
from pipeline.services.listing_models import ListingCursor
from pipeline.state import RunRecord

pytestmark = pytest.mark.integration

NIGHT = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
LONG_TOKENS = {"access_token_ttl": 60 * 86400}
VIDEO_KINDS = (
    "Video",
    "TimeLapseVideo",
    "BurstVideo",
    "Chaptered",
    "Livestream",
    "Looped",
    "LoopedVideo",
    "ExternalVideo",
    "Session",
)


@pytest.fixture
def night(aws: Any, gopro_sim: Any) -> Iterator[Any]:
    started: list[LocalPipeline] = []

    def start(media: list[SimMedia], *, env: dict[str, str] | None = None, **overrides: Any) -> LocalPipeline:
        sim = gopro_sim(SimulatorConfig(media=media, **LONG_TOKENS))
        pipeline = LocalPipeline(
            base_settings=Settings.from_env(env or {}),
            aws_endpoint_url=aws.endpoint_url,
            simulator=sim,
            retry_delay=0,
            settings_overrides={"retry_base_delay": 0.0, "retry_max_delay": 0.0, **overrides},
        ).start()
        started.append(pipeline)
        return pipeline

    yield start
    for pipeline in started:
        pipeline.stop()


def listen(pipeline: LocalPipeline, now: datetime) -> dict[str, Any]:
    return run_listing(pipeline.app, {"source": "aws.scheduler", "id": f"evt-{now.isoformat()}"}, now=now)


def queued(pipeline: LocalPipeline) -> dict[str, dict[str, Any]]:
    """Messages waiting in the download queue, by media id (consumes them)."""
    found: dict[str, dict[str, Any]] = {}
    sqs = pipeline.client("sqs")
    while True:
        batch = sqs.receive_message(QueueUrl=pipeline.settings.queue_url, MaxNumberOfMessages=10)
        if not batch.get("Messages"):
            return found
        for message in batch["Messages"]:
            body = json.loads(message["Body"])
            found[body["media_id"]] = body
        sqs.delete_message_batch(
            QueueUrl=pipeline.settings.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch["Messages"])],
        )


def cursor(pipeline: LocalPipeline) -> ListingCursor:
    return ListingCursor.from_json(pipeline.app.state.cursors.get("gopro"))


def run_of(pipeline: LocalPipeline, outcome: dict[str, Any]) -> RunRecord:
    run = pipeline.app.state.runs.get(outcome["run_id"])
    assert run is not None
    return run


def notes_of(pipeline: LocalPipeline, outcome: dict[str, Any]) -> dict[str, Any]:
    return json.loads(run_of(pipeline, outcome).listing_notes or "{}")


def report_of(pipeline: LocalPipeline, outcome: dict[str, Any]) -> str:
    return pipeline.app.summary().build(run_of(pipeline, outcome), now=utc_now()).body()


def hourly(count: int, start: datetime = NIGHT - 2 * DAY) -> list[SimMedia]:
    """`count` videos uploaded an hour apart, two days before the night (within the hold window)."""
    return [
        SimMedia(id=f"cc{i:022x}", size=10 * KB, created_at=start + i * timedelta(hours=1)) for i in range(count)
    ]


# --- the 16 types ----------------------------------------------------------------------------------------------


def with_unknown_type(media: list[SimMedia]) -> list[SimMedia]:
    return [*media, SimMedia(id="ff" + "0" * 22, type="Hologram", size=10 * KB)]


def test_camera_videos_and_edits_are_queued_the_rest_skipped_by_name(night) -> None:
    media = with_unknown_type(every_type_library())
    by_type = {m.type: m.id for m in media}
    pipeline = night(media)
    outcome = listen(pipeline, NIGHT)
    messages = queued(pipeline)
    wanted = {by_type[kind] for kind in (*VIDEO_KINDS, "MultiClipEdit", "Edit")}
    assert set(messages) == wanted
    assert messages[by_type["TimeLapseVideo"]]["media_type"] == "timelapse_video"
    assert messages[by_type["Chaptered"]]["media_type"] == "video"
    assert messages[by_type["MultiClipEdit"]]["media_type"] == "edit"
    notes = notes_of(pipeline, outcome)
    assert notes["unknown_types"] == {"Hologram": 1}
    assert notes["left_out_types"] == {"Photo": 1, "TimeLapse": 1, "Burst": 1, "Continuous": 1, "Audio": 1}
    report = report_of(pipeline, outcome)
    assert "unknown type, skipped:    1 (Hologram 1)" in report
    assert "Audio 1" in report


def test_with_photos_a_continuous_series_is_archived_like_a_burst(night) -> None:
    media = every_type_library()
    by_type = {m.type: m.id for m in media}
    pipeline = night(media, include_photos=True)
    listen(pipeline, NIGHT)
    messages = queued(pipeline)
    assert messages[by_type["Continuous"]]["media_type"] == "burst"
    assert messages[by_type["Burst"]]["media_type"] == "burst"
    assert by_type["Audio"] not in messages


def test_edits_are_left_out_when_include_edits_is_off(night) -> None:
    media = every_type_library()
    by_type = {m.type: m.id for m in media}
    pipeline = night(media, env={"INCLUDE_EDITS": "false"})
    outcome = listen(pipeline, NIGHT)
    messages = queued(pipeline)
    assert by_type["MultiClipEdit"] not in messages
    assert by_type["Edit"] not in messages
    assert by_type["Video"] in messages
    notes = notes_of(pipeline, outcome)
    assert notes["left_out_types"]["MultiClipEdit"] == 1
    assert notes["left_out_types"]["Edit"] == 1


# --- impossible values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(AbsurdKind))
def test_an_impossible_value_skips_one_medium_and_the_night_goes_on(night, kind: AbsurdKind) -> None:
    media = hourly(7)
    oldest = media[0].id  # newest first, pages of 3: alone on page 3, so its page holds nothing usable
    pipeline = night(media, list_page_size=3)
    pipeline.simulator.faults.absurd_value(kind, media_id=oldest)
    outcome = listen(pipeline, NIGHT)
    assert outcome["done"]
    assert set(queued(pipeline)) == {m.id for m in media[1:]}
    run = run_of(pipeline, outcome)
    assert run.lister_error is None
    assert run.skipped == 1
    notes = notes_of(pipeline, outcome)
    assert notes["unreadable_count"] == 1
    ((label, reason),) = notes["unreadable"]
    assert oldest in label
    assert reason
    report = report_of(pipeline, outcome)
    assert "unreadable, skipped:      1" in report
    assert f"{label}: {reason}" in report
    assert cursor(pipeline).high_water_mark == media[-1].created_at  # the walk was complete: the mark moves


def test_a_listed_size_of_ten_to_the_fifteen_no_longer_stops_every_night(night) -> None:
    """Issue 11's report: `file_size` 10**15 raised PoisonMessage out of the lister and the run ended CRITICAL."""
    media = hourly(3)
    pipeline = night(media)
    pipeline.simulator.faults.absurd_value(AbsurdKind.HUGE_SIZE, media_id=media[1].id)
    first = listen(pipeline, NIGHT)
    second = listen(pipeline, NIGHT + DAY)
    assert first["done"]
    assert second["done"]
    assert "PARTIAL" not in report_of(pipeline, first).splitlines()[0]
    assert "CRITICAL" not in report_of(pipeline, first).splitlines()[0]
    assert "file_size 1000000000000000 is impossible" in report_of(pipeline, first)


# --- short pages and the walk check ----------------------------------------------------------------------------


def test_a_short_page_is_asked_again_and_the_walk_completes(night) -> None:
    media = hourly(9)
    pipeline = night(media, list_page_size=3)
    pipeline.simulator.faults.short_pages(items=1, count=1, page=2)
    outcome = listen(pipeline, NIGHT)
    assert set(queued(pipeline)) == {m.id for m in media}
    pages = [r.query["page"][0] for r in pipeline.simulator.requests_to("search")]
    assert pages == ["1", "2", "2", "3"]
    assert notes_of(pipeline, outcome)["incomplete"] is None
    assert cursor(pipeline).last_full_reconcile_at == NIGHT


def test_a_page_that_stays_short_leaves_the_walk_incomplete_and_the_cursor_unmoved(night) -> None:
    media = hourly(9)
    pipeline = night(media, list_page_size=3)
    pipeline.simulator.faults.short_pages(items=1, count=None, page=2)
    outcome = listen(pipeline, NIGHT)
    first = queued(pipeline)
    assert len(first) == 7  # what the walk saw is queued all the same
    notes = notes_of(pipeline, outcome)
    assert notes["short_pages"] == [2]
    assert "page(s) 2 stayed short" in notes["incomplete"]
    after = cursor(pipeline)
    assert after.high_water_mark is None  # not moved
    assert after.last_full_reconcile_at is None  # and no finished reconcile
    report = report_of(pipeline, outcome)
    assert "The listing was INCOMPLETE" in report
    assert report.splitlines()[0].endswith("7 not finished, listing incomplete")  # built before any download

    pipeline.simulator.faults.clear()
    again = listen(pipeline, NIGHT + DAY)
    assert again["mode"] == "full"  # the next night lists everything again
    # The two the short page hid; not the seven again: their first messages are noted live (queued_until).
    assert set(queued(pipeline)) == {m.id for m in media} - set(first)
    assert cursor(pipeline).last_full_reconcile_at == NIGHT + DAY


def test_fewer_distinct_media_than_total_items_is_an_incomplete_walk(night) -> None:
    media = hourly(6)
    pipeline = night(media, list_page_size=3)
    payload: dict[str, Any] = {"source": "aws.scheduler"}
    first = run_listing(pipeline.app, payload, deadline=Deadline.in_seconds(1), now=NIGHT)
    assert first["next_page"] == 2
    # Between two pages a medium appears among those already walked past: every later item shifts by one, so
    # the walk misses one although no page is short. Only the count against `total_items` shows it.
    late = SimMedia(id="dd" + "0" * 22, size=10 * KB, created_at=media[3].created_at + timedelta(minutes=30))
    pipeline.simulator.add_media(late)
    run = run_of(pipeline, first)
    outcome = first
    while not outcome["done"]:
        event = {"continuation": {"run_id": run.run_id, "correlation_id": run.correlation_id}}
        event["continuation"]["page"] = outcome["next_page"]
        outcome = run_listing(pipeline.app, event, deadline=Deadline.in_seconds(1), now=NIGHT)
    assert late.id not in queued(pipeline)
    notes = notes_of(pipeline, first)
    assert notes["short_pages"] == []
    assert notes["incomplete"] == "saw 6 of the 7 media the service counts"
    assert cursor(pipeline).last_full_reconcile_at is None


# --- media not ready ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state", ["loading", "registered", "transcoding", "processing", "uploading", "pretranscoding", "updating",
              "live", "stabilizing", "something_new"],
)  # fmt: skip
def test_a_medium_not_ready_holds_the_mark_until_it_is_ready(night, state: str) -> None:
    media = hourly(4)
    media[2].ready_to_view = state
    pipeline = night(media)
    outcome = listen(pipeline, NIGHT)
    assert media[2].id not in queued(pipeline)
    assert cursor(pipeline).high_water_mark < media[2].created_at
    assert notes_of(pipeline, outcome)["not_ready"] == {state: 1}
    assert f"still processing in the cloud: 1 ({state} 1)" in report_of(pipeline, outcome)

    pipeline.simulator.set_ready_state(media[2].id, "ready")
    later = listen(pipeline, NIGHT + DAY)
    assert later["mode"] == "incremental"
    assert media[2].id in queued(pipeline)
    assert cursor(pipeline).high_water_mark == media[-1].created_at


def test_a_failed_medium_does_not_hold_the_mark(night) -> None:
    media = hourly(4)
    media[2].ready_to_view = "failure"
    pipeline = night(media)
    outcome = listen(pipeline, NIGHT)
    assert media[2].id not in queued(pipeline)
    assert cursor(pipeline).high_water_mark == media[-1].created_at  # left to the next full reconcile
    assert notes_of(pipeline, outcome)["not_ready"] == {"failure": 1}


def test_a_medium_listed_in_the_future_never_pushes_the_mark_past_the_night(night) -> None:
    media = hourly(3)
    media.append(SimMedia(id="ef" + "0" * 22, size=10 * KB, created_at=NIGHT + 30 * DAY))
    pipeline = night(media)
    listen(pipeline, NIGHT)
    assert cursor(pipeline).high_water_mark == NIGHT
