"""An expiring-message backfill (issue 12 point 3): a library bigger than a night's budget, over several nights.

A night queues only its budget (`NIGHTLY_BUDGET_BYTES`, here three videos' worth) and leaves the rest PENDING;
the following nights, all incremental, queue what waits in the table, oldest first, without a weekly reconcile.
One message is made to expire (deleted from the queue unprocessed, as SQS drops a message past its retention):
its medium is never sent a second message while the first may be live, and once the retention has passed the
listing counts it expired (`MessagesExpired`) and queues it again. Every medium ends archived exactly once.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline import resources
from pipeline.state import MediaStatus
from tests.chaos.library import library, video

FAMILY = "backfill"
SIZE = 300 * 1024  # single PUTs: the scenario is about nights, not parts
PER_NIGHT = 3


def _notes(run: Any, night: Any) -> dict[str, Any]:
    record = run.app.state.runs.get(night.run_id)
    assert record is not None, f"night {night.run_id} created no run record"
    return json.loads(record.listing_notes or "{}")


def test_an_expiring_message_backfill(chaos) -> None:
    media = [video(index, SIZE + index) for index in range(1, 9)]  # 8 videos: three nights' worth and more
    run = chaos(
        library(*media),
        name="an expiring-message backfill",
        family=FAMILY,
        overrides={"nightly_budget_bytes": PER_NIGHT * SIZE + 100},
    )
    lost: list[str] = []

    def expire_one(pipeline: Any) -> None:
        """Drop one of tonight's messages unprocessed, as SQS does with a message past its retention."""
        sqs = pipeline.client("sqs")
        found = sqs.receive_message(QueueUrl=pipeline.settings.queue_url, MaxNumberOfMessages=1)["Messages"]
        lost.append(json.loads(found[0]["Body"])["media_id"])
        sqs.delete_message(QueueUrl=pipeline.settings.queue_url, ReceiptHandle=found[0]["ReceiptHandle"])

    nights = [run.night(), run.next_night(after_listing=expire_one), run.next_night(), run.next_night()]
    assert [n.listing["enqueued"] for n in nights] == [3, 3, 2, 0]  # the budget, then what was left
    assert [_notes(run, n)["mode"] for n in nights[:3]] == ["full", "incremental", "incremental"]
    assert run.app.state.runs.get(nights[3].run_id) is None  # a quiet incremental night (a full one has a run)
    victim = run.app.state.media.get("gopro", lost[0])
    assert victim is not None
    assert victim.status is MediaStatus.PENDING  # its message is gone, but it may be live: no second one yet
    assert _notes(run, nights[0])["backlog"]["waiting"] == 5
    assert _notes(run, nights[0])["backlog"]["budget_source"] == "setting"

    late = run.next_night(days=resources.QUEUE_RETENTION_DAYS)  # past the retention of that message

    assert _notes(run, late)["mode"] == "incremental"  # not the weekly reconcile: the backlog found it
    assert late.listing["enqueued"] == 1
    backlog = _notes(run, late)["backlog"]
    assert (backlog["expired"], backlog["waiting"], backlog["queued_from_backlog"]) == (1, 0, 1)
    assert run.app.state.media.get("gopro", lost[0]).status is MediaStatus.COMPLETED
    for night in [*nights, late]:
        assert night.listing["enqueued"] <= PER_NIGHT  # no night queued more than its budget
    outcome = run.verify()  # every medium archived byte for byte, no key uploaded twice, nothing stuck
    assert outcome.completed == len(media)
    assert outcome.duplicated == 0
