"""Overlapping runs: two runs whose messages name the same media, one worker holding a medium while the other
run's copy arrives, and each run reported once with figures that are its own and add up (issue 12, point 5).

Run A is a real nightly listing. Run B is what a lister that did not know A's messages were still queued sent
the next night (the pipeline before its backlog bookkeeping, or a redrive beside a live message): its own run
record, one new medium, and a second message for each of A's media. One of A's media answers its first request
slowly, so whichever worker claims it first still holds it when the other run's copy is delivered.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.gopro_simulator import MIB
from pipeline.clock import utc_now
from pipeline.messages import DownloadMessage
from pipeline.queueing import send_download_messages
from tests.chaos.harness import DRAIN_POLL, NIGHT_TIMEOUT, ChaosRun
from tests.chaos.library import media_id, standard, video

pytestmark = pytest.mark.integration
FAMILY = "process"
RUN_B = "29990101T020000Z-0verlap0"  # later than any real run id: the newest run
HELD_SECONDS = 4.0


def _queue_overlapping_run(run: ChaosRun, media: list[Any]) -> None:
    """Run B: its record, then a message per medium (A's media again, and the new one), as a listing sends them."""
    state, settings = run.app.state, run.settings
    state.runs.create(RUN_B, correlation_id="overlap", started_at=utc_now(), provider="gopro")
    messages = [
        DownloadMessage.create(
            run_id=RUN_B,
            correlation_id="overlap",
            provider="gopro",
            media_id=medium.id,
            filename=medium.filename,
            size=medium.size,
            captured_at=medium.captured_at.isoformat().replace("+00:00", "Z"),
            media_type="video",
        )
        for medium in media
    ]
    sent = send_download_messages(run.client("sqs"), settings.queue_url, messages)
    assert len(sent.sent) == len(media)
    state.runs.finish_listing(RUN_B, listed=len(media), enqueued=len(media))


def test_two_overlapping_runs_each_get_one_correct_report(chaos) -> None:
    run = chaos(standard(tag="o"), name="overlapping runs (same media, one held by a worker)", family=FAMILY)
    listing = run.pipeline.list()
    run_a = listing["run_id"]
    assert listing["enqueued"] == 3
    run.sim.add_media(video(4, 2 * MIB, tag="o"))
    run.listed |= {m.id for m in run.sim.library}
    _queue_overlapping_run(run, list(run.sim.library))
    run.sim.faults.slow_first_byte(HELD_SECONDS, count=1, media_id=media_id(1, "o"))

    drained, stats = run.pipeline.drain(timeout=NIGHT_TIMEOUT, poll=DRAIN_POLL)
    summary = run.pipeline.summarise()
    again = run.pipeline.summarise()  # the alarm fires again: nothing more is sent
    run.nights.append(run.pipeline.result({"run_id": run_a, **listing}, summary, drained, stats))

    assert drained
    reports = {entry["run_id"]: entry["report"] for entry in summary["runs"]}
    assert sorted(reports) == sorted([run_a, RUN_B])
    assert again == {"published": False}
    for run_id, report in reports.items():
        outcomes = (
            report["synced"]
            + report["archived_elsewhere"]
            + report["source_deleted"]
            + report["failed"]
            + report["unfinished"]
        )
        assert outcomes == report["enqueued"], f"{run_id}: the counts do not add up"
        assert (report["outcome"], report["unfinished"], report["failed"]) == ("OK", 0, 0), run_id
        assert report["total_archived"] == 4
        stored = run.app.state.runs.get(run_id)
        assert stored is not None
        assert stored.report_sent_at is not None
    a, b = reports[run_a], reports[RUN_B]
    assert (a["enqueued"], b["enqueued"]) == (3, 4)
    assert a["synced"] + b["synced"] == 4  # every medium archived once, by one run or the other
    assert a["archived_elsewhere"] + b["archived_elsewhere"] == 3  # the other copy of each overlapping medium
    assert a["leased_elsewhere"] + b["leased_elsewhere"] >= 1  # the held medium's second copy met the lease
    run.verify()
