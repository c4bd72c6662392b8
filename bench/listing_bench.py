"""The issue-7 listing benchmark: what a night's listing costs for a library of 10,000 and 100,000 videos.

    .venv/bin/python bench/listing_bench.py                    # 10,000 and 100,000 videos
    .venv/bin/python bench/listing_bench.py --videos 10000      # one library size

For each library: a moto server (its own process) and the GoPro simulator (in this process, with the bench's
`FastListingSimulator` listing; videos of 1 kB: listing only, nothing is downloaded), then a sequence of nights,
each one `run_listing` as the scheduler would invoke it, in a fresh `App` (a cold Lambda: it reads the
credentials secret again):

1. first full run: the table is empty, every video is new and queued;
   (then, not measured: the queue is purged and every medium is written COMPLETED, as if the downloads ran)
2. full reconcile: the weekly full listing of a library that is all archived;
3. nothing new: an incremental night;
4. 50 new: an incremental night after 50 uploads;
5. nothing new, token refresh due: as 3, with the access token inside the refresh margin (the credentials
   module's refresh: lock, re-read, provider token call, secret write, unlock).

Counted per night: provider calls (the simulator's request log: search pages and token grants), AWS calls
(botocore `before-call` hooks, by operation) and wall time. Results: bench/results/listing.json.

One stand-in: moto's SendMessage walks every message already in the queue (to recompute the queue's attributes),
so filling a queue with 100,000 messages is quadratic and takes hours. During a night the bench empties the
queue every half second from a client of its own (not counted); SQS does not care how full a queue is.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.aws_calls import AwsCallCounter  # noqa: E402
from bench.fast_sim import FastListingSimulator  # noqa: E402
from bench.machine import LoadSampler, loadavg, machine_info, stamp  # noqa: E402
from bench.procs import FAKE_AWS, moto_server  # noqa: E402
from devtools.gopro_simulator import SimMedia, SimulatorConfig  # noqa: E402
from devtools.local_runtime import LocalPipeline  # noqa: E402
from pipeline import resources  # noqa: E402
from pipeline.app import App  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.handlers.lister import run_listing  # noqa: E402

RESULTS = BENCH / "results" / "listing.json"
NIGHT_1 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
TOKEN_TTL = 60 * 86400  # weeks: an ordinary night needs no refresh (night 5 forces one)


def scheduled(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "source": "aws.scheduler",
        "detail-type": "Scheduled Event",
        "id": os.urandom(8).hex(),
        **(extra or {}),
    }


def mark_all_completed(pipeline: LocalPipeline, media_ids: list[str]) -> None:
    """What the downloaders would have left behind: every medium COMPLETED (BatchWriteItem, 25 a call)."""
    assert pipeline.settings is not None
    ddb = pipeline.client("dynamodb")
    table = pipeline.settings.table_name
    for start in range(0, len(media_ids), 25):
        items = [
            {
                "PutRequest": {
                    "Item": {
                        resources.TABLE_PARTITION_KEY: {"S": resources.media_key("gopro", media_id)},
                        "provider": {"S": "gopro"},
                        "media_id": {"S": media_id},
                        "status": {"S": "COMPLETED"},
                        "sync_timestamp": {"S": "2026-03-01T03:00:00.000Z"},
                    }
                }
            }
            for media_id in media_ids[start : start + 25]
        ]
        pending: dict[str, Any] = {table: items}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    pipeline.client("sqs").purge_queue(QueueUrl=pipeline.settings.queue_url)


@contextmanager
def queue_kept_small(endpoint: str, queue_url: str) -> Iterator[None]:
    """Purge the download queue twice a second while a night runs (see the module docstring for why)."""
    import boto3

    sqs = boto3.session.Session().client("sqs", endpoint_url=endpoint, region_name="eu-west-1")
    stop = threading.Event()

    def purge() -> None:
        while not stop.wait(0.5):
            sqs.purge_queue(QueueUrl=queue_url)

    thread = threading.Thread(target=purge, daemon=True, name="bench-purger")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_library(videos: int, sink_url: str) -> dict[str, Any]:
    config = SimulatorConfig(videos=videos, photos=0, video_size=1000, access_token_ttl=TOKEN_TTL, seed=7)
    sim = FastListingSimulator(config).start()
    pipeline = LocalPipeline(
        base_settings=Settings.from_env({}), aws_endpoint_url=sink_url, simulator=sim, retry_delay=0
    ).start()
    assert pipeline.settings is not None
    logging.getLogger().setLevel(logging.WARNING)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - EMF metric lines, not wanted here
    counter = AwsCallCounter()
    nights: list[dict[str, Any]] = []

    def night(name: str, now: datetime, event: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        assert pipeline.settings is not None
        app = App(pipeline.settings.with_overrides(**overrides), metrics_stream=devnull)
        counter.hook()
        counter.reset()
        sim.clear_requests()
        load = loadavg()
        with queue_kept_small(sink_url, pipeline.settings.queue_url):
            began = time.monotonic()
            outcome = run_listing(app, event, now=now)
            wall = time.monotonic() - began
        counter.hook()
        search, token = len(sim.requests_to("search")), len(sim.requests_to("token"))
        listed = outcome["listed"]
        record = {
            "night": name,
            "mode": outcome["mode"],
            "listed": listed,
            "enqueued": outcome["enqueued"],
            "already_archived": outcome["already_archived"],
            "provider_calls": search + token,
            "provider_calls_by_endpoint": {"search": search, "token": token},
            "aws_calls": counter.total,
            "aws_calls_by_operation": counter.snapshot(),
            "aws_calls_per_listed_video": round(counter.total / listed, 4) if listed else None,
            "provider_calls_per_listed_video": round((search + token) / listed, 4) if listed else None,
            "wall_s": round(wall, 2),
            "load1": round((load + loadavg()) / 2, 2),
        }
        print(json.dumps({"videos": videos, **record}), flush=True)
        nights.append(record)
        return outcome

    try:
        night("first full run (empty table)", NIGHT_1, scheduled())
        counter.enabled = False
        mark_all_completed(pipeline, [m.id for m in sim.library])
        counter.enabled = True
        night("full reconcile (all archived)", NIGHT_1 + timedelta(days=1), scheduled({"full_reconcile": True}))
        night("nothing new", NIGHT_1 + timedelta(days=2), scheduled())
        newest = max(m.created_at for m in sim.library if m.created_at is not None)
        for index in range(50):
            when = newest + timedelta(hours=1, minutes=index)
            sim.add_media(SimMedia(id=f"ff{index:022x}", size=1000, captured_at=when, created_at=when))
        night("50 new", NIGHT_1 + timedelta(days=3), scheduled())
        margin = TOKEN_TTL + 86400  # the stored token now "expires within the margin": refreshed first
        night(
            "nothing new, token refresh due",
            NIGHT_1 + timedelta(days=4),
            scheduled(),
            token_refresh_margin_seconds=margin,
        )
    finally:
        pipeline.stop()
        sim.stop()
        devnull.close()
    return {"videos": videos, "library_media": len(sim.library), "nights": nights}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.update(FAKE_AWS)
    report: dict[str, Any] = {"benchmark": "listing", "started": stamp(), "machine": machine_info()}
    libraries = []
    with LoadSampler() as load:
        for videos in args.videos:
            # SQS allows one PurgeQueue a minute; the bench's purger needs more (see queue_kept_small).
            with moto_server({"MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"}) as sink:
                libraries.append(run_library(videos, sink.url))
    report.update(finished=stamp(), load=load.summary(), libraries=libraries)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
