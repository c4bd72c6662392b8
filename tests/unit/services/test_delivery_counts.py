"""Every delivery is counted in the run of its message: duplicates that find their medium COMPLETED, deliveries
that find another worker holding it, SQS's second copies, and unreadable messages that still name a run."""

from __future__ import annotations

import json
from typing import Any

from pipeline.messages import DownloadMessage
from pipeline.services.download_outcome import Disposition
from tests.unit.services.fakes import Rig, delivery, video

RUN_A = "20260301T020000Z-aaaaaaaa"
RUN_B = "20260302T020000Z-bbbbbbbb"


def rig_with_runs() -> Rig:
    rig = Rig()
    rig.provider.add(video(1))
    for run_id in (RUN_A, RUN_B):
        rig.state.runs.create(run_id, correlation_id="c", started_at=rig.clock(), provider="gopro")
    return rig


def message(run_id: str, media_id: str = "vid000001", message_id: str = "m-1") -> dict[str, Any]:
    body = DownloadMessage.create(
        run_id=run_id,
        correlation_id="c",
        provider="gopro",
        media_id=media_id,
        filename="GX010001.MP4",
        size=1001,
        captured_at="2026-03-01T01:00:00Z",
    )
    return {"MessageId": message_id, "Body": body.to_json(), "MessageAttributes": body.message_attributes()}


def counters(rig: Rig, run_id: str) -> dict[str, Any]:
    run = rig.state.runs.get(run_id)
    assert run is not None
    names = ("synced", "duplicates", "leased_elsewhere", "redelivered", "poison")
    return {name: getattr(run, name) for name in names} | {"ids": run.leased_elsewhere_ids}


def test_a_delivery_that_finds_its_medium_archived_by_another_run_counts_as_a_duplicate() -> None:
    rig = rig_with_runs()
    assert rig.downloader().process(delivery(message(RUN_A))).disposition is Disposition.SYNCED

    outcome = rig.downloader().process(delivery(message(RUN_B, message_id="m-2")))

    assert outcome.disposition is Disposition.ALREADY_DONE
    assert counters(rig, RUN_B) == {
        "synced": 0, "duplicates": 1, "leased_elsewhere": 0, "redelivered": 0, "poison": 0, "ids": ()
    }  # fmt: skip
    assert counters(rig, RUN_A)["synced"] == 1


def test_a_delivery_that_finds_another_runs_worker_holding_the_medium_keeps_its_id() -> None:
    rig = rig_with_runs()
    assert rig.state.media.claim("gopro", "vid000001", owner="worker-a", run_id=RUN_A, lease_seconds=900)

    outcome = rig.downloader().process(delivery(message(RUN_B, message_id="m-2")))

    assert outcome.disposition is Disposition.LEASED_ELSEWHERE
    assert counters(rig, RUN_B)["leased_elsewhere"] == 1
    assert counters(rig, RUN_B)["ids"] == ("vid000001",)


def test_a_second_copy_of_the_runs_own_message_is_only_redelivered() -> None:
    """SQS delivers at least once: the run's own worker counts the medium, so the copy must not count twice."""
    rig = rig_with_runs()
    assert rig.downloader().process(delivery(message(RUN_A))).disposition is Disposition.SYNCED
    rig.state.media.claim("gopro", "vid000002", owner="worker-a", run_id=RUN_A, lease_seconds=900)

    done = rig.downloader().process(delivery(message(RUN_A, message_id="m-2")))
    held = rig.downloader().process(delivery(message(RUN_A, "vid000002", message_id="m-3")))

    assert (done.disposition, held.disposition) == (Disposition.ALREADY_DONE, Disposition.LEASED_ELSEWHERE)
    counted = counters(rig, RUN_A)
    assert (counted["synced"], counted["redelivered"], counted["duplicates"], counted["leased_elsewhere"]) == (
        1,
        2,
        0,
        0,
    )


def test_an_unreadable_message_that_names_its_run_is_counted_there() -> None:
    rig = rig_with_runs()
    body = json.dumps({"run_id": RUN_A, "schema_version": 99})

    outcome = rig.downloader().process(delivery({"MessageId": "m-9", "Body": body}))

    assert outcome.disposition is Disposition.POISON
    assert counters(rig, RUN_A)["poison"] == 1


def test_the_kept_ids_are_bounded_but_the_counter_is_not() -> None:
    from pipeline.state import runs

    rig = rig_with_runs()
    for index in range(runs.MAX_LEASED_ELSEWHERE_IDS + 3):
        assert rig.state.runs.update(RUN_B, leased_elsewhere=1, leased_elsewhere_id=f"id{index:05d}")
    run = rig.state.runs.get(RUN_B)
    assert run is not None
    assert run.leased_elsewhere == runs.MAX_LEASED_ELSEWHERE_IDS + 3
    assert len(run.leased_elsewhere_ids) == runs.MAX_LEASED_ELSEWHERE_IDS


def test_counting_an_unreadable_message_never_stops_its_dead_lettering() -> None:
    """Bodies nested deeper than the JSON parser goes, or a failed counter write: still POISON, acknowledged."""
    rig = rig_with_runs()
    deep = "[" * 5000 + "]" * 5000

    assert rig.downloader().process(delivery({"MessageId": "m-8", "Body": deep})).disposition is Disposition.POISON

    def broken(*_args: Any, **_kwargs: Any) -> bool:
        raise RuntimeError("the table is gone")

    rig.state.runs.update = broken  # type: ignore[method-assign]
    body = json.dumps({"run_id": RUN_A, "schema_version": 99})
    assert rig.downloader().process(delivery({"MessageId": "m-9", "Body": body})).disposition is Disposition.POISON
