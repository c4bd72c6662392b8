"""`python -m devtools.local_runtime`: the whole pipeline on this machine, with a progress line and the report.

stdout carries the progress line and the report; the functions' own output (JSON logs and EMF metric lines, on
stdout in Lambda) goes to stderr, as Lambda sends it to CloudWatch Logs rather than to whoever invoked it.
Exit codes: 0 every queued video was archived, 1 not, 2 bad configuration or arguments (as `python -m pipeline`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import IO

from devtools.gopro_simulator import GoProSimulator, parse_size
from devtools.local_runtime.demo import apply_scenario, demo_library
from devtools.local_runtime.pipeline import LocalPipeline, RunResult
from pipeline.cli import run_command
from pipeline.config import Settings
from pipeline.version import version_line

log = logging.getLogger(__name__)
MIB = 1024 * 1024
# Small parts so a demo of few-MB videos exercises multipart uploads as 3 GB videos do in production.
DEMO_OVERRIDES = {
    "part_size_bytes": 5 * MIB,
    "multipart_threshold_bytes": 5 * MIB,
    "retry_base_delay": 0.1,
    "retry_max_delay": 0.5,
}


class Progress:
    """Videos done/total, bytes and rate: one rewritten line on a terminal, a plain line every few seconds else."""

    def __init__(self, pipeline: LocalPipeline, run_id: str, stream: IO[str]) -> None:
        self._pipeline = pipeline
        self._run_id = run_id
        self._stream = stream
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self._last_line = ""
        self._last_print = 0.0

    def __call__(self) -> None:
        app = self._pipeline.app
        if app is None:
            return
        now = time.monotonic()
        if not self._tty and now - self._last_print < 3.0:
            return
        run = app.state.runs.get(self._run_id)
        if run is None:
            return
        done = run.synced + run.failed + run.source_deleted
        elapsed = max(0.001, now - self._started)
        line = (
            f"videos {done}/{run.enqueued} | {run.bytes_transferred / 1e6:.1f} MB | "
            f"{run.bytes_transferred / 1e6 / elapsed:.1f} MB/s | failed {run.failed}"
        )
        if line == self._last_line and not self._tty:
            return
        self._last_line, self._last_print = line, now
        if self._tty:
            self._stream.write("\r" + line.ljust(70))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._tty:
            self._stream.write("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.local_runtime", description="run the whole pipeline on an embedded local stack"
    )
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("--aws-endpoint-url", help="use this AWS endpoint instead of starting a moto server")
    parser.add_argument("--api-url", help="use this GoPro API instead of starting the simulator")
    parser.add_argument("--videos", type=int, default=12, help="simulated library size (default 12)")
    parser.add_argument("--video-size", default="4MB", help="simulated video size (default 4MB)")
    parser.add_argument("--report-json", help="also write the run report to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda settings: run_local(args, settings))


def run_local(args: argparse.Namespace, settings: Settings) -> int:
    out = sys.stdout
    with redirect_stdout(sys.stderr):  # the functions' stdout is their log stream
        return _run(args, settings, out)


def _run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    overrides = dict(DEMO_OVERRIDES)
    simulator = None
    if not args.api_url:
        simulator = GoProSimulator(demo_library(args.videos, parse_size(args.video_size)))
    pipeline = LocalPipeline(
        base_settings=settings,
        aws_endpoint_url=args.aws_endpoint_url,
        api_url=args.api_url,
        simulator=simulator,
        settings_overrides=overrides,
    )
    with pipeline:
        where = args.aws_endpoint_url or "an embedded moto server"
        print(f"local stack: {where}; GoPro API: {args.api_url or pipeline.simulator.base_url}", file=out)
        listing = pipeline.list()
        if listing.get("error"):
            print(f"the lister failed: {listing['error']}", file=out)
            result = pipeline.result(listing, pipeline.summarise(), True, _no_stats())
        else:
            print(
                f"listed {listing['listed']} media; {listing['enqueued']} queued, "
                f"{listing['already_archived']} already archived",
                file=out,
            )
            if simulator is not None:
                apply_scenario(pipeline)
            progress = Progress(pipeline, listing["run_id"], out)
            drained, stats = pipeline.drain(progress=progress)
            progress()
            progress.finish()
            result = pipeline.result(listing, pipeline.summarise() if drained else {}, drained, stats)
        catalog = _demo_catalog(pipeline)
    _print_report(result, out)
    print(f"\ncatalog of the demo archive: {catalog}", file=out)
    if args.report_json:
        Path(args.report_json).write_text(json.dumps(_as_json(result), indent=2, sort_keys=True))
    return 0 if result.ok else 1


def _demo_catalog(pipeline: LocalPipeline) -> str:
    """The catalog page of the demo archive (devtools/demo_catalog.py), or why there is none."""
    from devtools.demo_catalog import write_demo_catalog

    try:
        return str(write_demo_catalog(pipeline))
    except Exception as exc:  # the demo's verdict is about the night, not the page
        return f"not written ({type(exc).__name__}: {exc})"


def _no_stats():  # type: ignore[no-untyped-def]
    from devtools.local_runtime.pipeline import ConsumerStats

    return ConsumerStats()


def _print_report(result: RunResult, out: IO[str]) -> None:
    print("", file=out)
    if result.report_text:
        print(result.report_text.split("\n--- JSON ---")[0], file=out)
    else:
        print("no report was published (the queue did not drain in time)", file=out)
    verdict = "every queued video was archived" if result.ok else "NOT every queued video was archived"
    print(f"\nresult: {verdict} (statuses {result.statuses}, DLQ {result.dlq_depth})", file=out)


def _as_json(result: RunResult) -> dict[str, object]:
    return {
        "run_id": result.run_id,
        "ok": result.ok,
        "listing": result.listing,
        "report": result.report,
        "statuses": result.statuses,
        "dlq_depth": result.dlq_depth,
        "drained": result.drained,
        "consumer": {
            "invocations": result.consumer_stats.invocations,
            "records": result.consumer_stats.records,
            "failed_records": result.consumer_stats.failed_records,
        },
    }
