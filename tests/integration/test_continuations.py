"""Work too long for one Lambda invocation is continued in a fresh one, never cut short or spent as a retry."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from devtools.gopro_simulator import KB, MIB, SimMedia, SimulatorConfig
from devtools.local_runtime import LocalPipeline
from pipeline.config import Settings
from pipeline.deadline import Deadline
from pipeline.handlers.lister import run_listing
from pipeline.keys import object_key
from pipeline.services.downloader import CONTINUATION_ATTRIBUTE, deadline_safety_seconds
from pipeline.state import MediaStatus

pytestmark = pytest.mark.integration


def start(aws: Any, sim: Any, **kwargs: Any) -> LocalPipeline:
    return LocalPipeline(
        base_settings=Settings.from_env({}),
        aws_endpoint_url=aws.endpoint_url,
        simulator=sim,
        retry_delay=0,
        **kwargs,
    ).start()


def queued_ids(pipeline: LocalPipeline) -> list[str]:
    ids = []
    sqs = pipeline.client("sqs")
    while True:
        batch = sqs.receive_message(
            QueueUrl=pipeline.settings.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        if not batch.get("Messages"):
            return ids
        ids.extend(json.loads(m["Body"])["media_id"] for m in batch["Messages"])


def test_a_listing_out_of_time_continues_where_it_stopped(aws, gopro_sim) -> None:
    media = [SimMedia(id=f"bb{i:022x}", size=10 * KB) for i in range(7)]
    sim = gopro_sim(SimulatorConfig(media=media))
    pipeline = start(aws, sim, settings_overrides={"list_page_size": 2})
    try:
        payload: dict[str, Any] = {"source": "aws.scheduler", "id": "evt-1"}
        invocations = []
        while True:
            # Always "almost out of time": a second left.
            outcome = run_listing(pipeline.app, payload, deadline=Deadline.in_seconds(1))
            invocations.append(outcome)
            if outcome["done"]:
                break
            run = pipeline.app.state.runs.get(outcome["run_id"])
            payload = {
                "continuation": {
                    "run_id": run.run_id,
                    "correlation_id": run.correlation_id,
                    "page": outcome["next_page"],
                }
            }
        assert [o["next_page"] for o in invocations] == [2, 3, 4, None]
        assert len({o["run_id"] for o in invocations}) == 1  # one run, continued
        assert sorted(queued_ids(pipeline)) == sorted(m.id for m in media)  # each once, none lost
        run = pipeline.app.state.runs.get(invocations[0]["run_id"])
        assert (run.listed, run.enqueued, run.listing_done) == (7, 7, True)
    finally:
        pipeline.stop()


def test_a_bad_continuation_is_refused_clearly(aws, gopro_sim) -> None:
    pipeline = start(aws, gopro_sim(videos=1, photos=0, video_size=10 * KB))
    try:
        with pytest.raises(ValueError, match="continuation needs"):
            run_listing(pipeline.app, {"continuation": {"run_id": "x", "page": "two"}})
    finally:
        pipeline.stop()


def test_a_slow_transfer_is_checkpointed_and_resumed_without_spending_receives(aws, gopro_sim) -> None:
    medium = SimMedia(id="cc" + "0" * 22, size=20 * MIB)
    sim = gopro_sim(SimulatorConfig(media=[medium], bandwidth=2 * MIB))  # per connection: a part takes ~2.5 s
    pipeline = start(
        aws,
        sim,
        # An invocation has ~6 s before its deadline: two parts at a time fit once, not twice.
        lambda_timeout=deadline_safety_seconds(Settings()) + 6,
        settings_overrides={
            "part_size_bytes": 5 * MIB,
            "multipart_threshold_bytes": 5 * MIB,
            "transfer_window": 2,
        },
    )
    try:
        sent: list[dict[str, Any]] = []
        sqs = pipeline.client("sqs")

        def record(params: dict[str, Any], **_: Any) -> None:
            sent.append(params)

        sqs.meta.events.register("provide-client-params.sqs.SendMessage", record)
        listing = pipeline.list()
        assert listing["enqueued"] == 1
        drained, stats = pipeline.drain(timeout=180)
        assert drained
        continuations = [p for p in sent if CONTINUATION_ATTRIBUTE in p.get("MessageAttributes", {})]
        assert continuations, "the transfer should have needed more than one invocation"
        assert stats.failed_records == 0  # no receive was spent on the deadline
        record_ = pipeline.app.state.media.get("gopro", medium.id)
        assert record_.status is MediaStatus.COMPLETED
        assert record_.checkpoint is None
        assert pipeline.dlq_depth() == 0
        key = object_key("gopro", medium.id, medium.captured_at, medium.filename)
        s3 = pipeline.client("s3")
        versions = s3.list_object_versions(Bucket=pipeline.settings.bucket_name, Prefix=key)["Versions"]
        assert len(versions) == 1
        assert s3.list_multipart_uploads(Bucket=pipeline.settings.bucket_name).get("Uploads", []) == []
        body = s3.get_object(Bucket=pipeline.settings.bucket_name, Key=key, ChecksumMode="DISABLED")["Body"]
        assert hashlib.sha256(body.read()).hexdigest() == sim.source_sha256(medium.id)
        # Parts fetched once each: resumed invocations did not download again what was already in S3.
        ranged = [r for r in sim.requests_to("content") if r.method == "GET" and "Range" in r.headers]
        assert len(ranged) == 4
    finally:
        pipeline.stop()
