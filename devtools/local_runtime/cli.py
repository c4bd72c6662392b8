"""`python -m devtools.local_runtime`: the whole pipeline on this machine, with a progress bar and a short report.

stdout carries the progress and the final report, nothing else. The functions' own output (JSON logs and EMF
metric lines, on stdout in Lambda, where they go to CloudWatch Logs rather than to whoever invoked the function)
goes to a log file the command names (`--log-file`, default `.cache/demo/local-run.log`), and with `-v` to stderr
instead. On a terminal the progress is one bar rewritten in place; piped, a plain line every few seconds and the
final one. The options and the one-line errors are `gopro-s3-sync demo`'s (scripts/cli/local.py). Exit codes: 0
every queued video was archived, 1 not, and the tool's table for the rest (2 a bad value, 4 no AWS credentials for
--endpoint-url, 6 GoPro credentials missing for --api-url, 7 an endpoint unreachable, 130 interrupted).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import IO, Any

from devtools.gopro_simulator import GoProSimulator
from devtools.local_runtime.demo import apply_scenario, demo_library
from devtools.local_runtime.pipeline import LocalPipeline, RunResult
from devtools.local_runtime.progress import Progress, Snapshot
from devtools.local_runtime.report import gather
from pipeline.config import Settings
from pipeline.observability.logging import configure_logging

log = logging.getLogger(__name__)
MIB = 1024 * 1024
EXIT_INTERRUPTED = 130
DEFAULT_LOG_FILE = Path(".cache/demo/local-run.log")
# Small parts so a demo of few-MB videos exercises multipart uploads as 3 GB videos do in production.
DEMO_OVERRIDES = {
    "part_size_bytes": 5 * MIB,
    "multipart_threshold_bytes": 5 * MIB,
    "retry_base_delay": 0.1,
    "retry_max_delay": 0.5,
}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m devtools.local_runtime` (`make demo`): `gopro-s3-sync demo`, options and errors included."""
    from scripts.cli.errors import run_command
    from scripts.cli.local import demo_command

    return run_command(demo_command, argv, "python -m devtools.local_runtime")


def run_local(args: Any, settings: Settings) -> int:
    """The demo with `args` (the options of `gopro-s3-sync demo`, scripts/cli/local.py)."""
    out = sys.stdout
    try:
        with log_destination(args, settings) as logs, redirect_stdout(logs):  # the functions' stdout: their logs
            return _run(args, settings, out)
    except KeyboardInterrupt:
        out.write("\n")
        print("interrupted: the run was stopped (an embedded local stack keeps nothing)", file=sys.stderr)
        return EXIT_INTERRUPTED


@contextmanager
def log_destination(args: Any, settings: Settings) -> Iterator[IO[str]]:
    """stderr with -v, else the log file (truncated: it holds this run only); the logging handler points there."""
    if args.verbose:
        configure_logging(settings.log_level, stream=sys.stderr)
        yield sys.stderr
        return
    path: Path = args.log_file
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as stream:
        configure_logging(settings.log_level, stream=stream)
        logging.captureWarnings(True)
        try:
            yield stream
        finally:
            configure_logging(settings.log_level, stream=sys.stderr)


def _run(args: Any, settings: Settings, out: IO[str]) -> int:
    started = time.monotonic()
    overrides = dict(DEMO_OVERRIDES)
    simulator = None
    if not args.api_url:
        simulator = GoProSimulator(demo_library(args.videos, args.video_size, burst_video=True))
    pipeline = LocalPipeline(
        base_settings=settings,
        aws_endpoint_url=args.endpoint_url,
        api_url=args.api_url,
        simulator=simulator,
        settings_overrides=overrides,
    )
    log_file = None if args.verbose else args.log_file
    with pipeline:
        where = args.endpoint_url or "an embedded moto server"
        print(f"local stack: {where}; GoPro API: {args.api_url or pipeline.simulator.base_url}", file=out)
        if log_file is not None:
            print(f"logs: {log_file} (-v shows them here)", file=out)
        out.flush()
        listing = pipeline.list()
        if listing.get("error"):
            result = pipeline.result(listing, pipeline.summarise(), True, _no_stats())
        else:
            print(
                f"listed {listing['listed']} media; {listing['enqueued']} queued, "
                f"{listing['already_archived']} already archived",
                file=out,
            )
            out.flush()
            if simulator is not None:
                apply_scenario(pipeline)
            progress = night_progress(pipeline, listing, out, plain=args.verbose)
            drained, stats = pipeline.drain(progress=progress)
            progress.finish()
            result = pipeline.result(listing, pipeline.summarise() if drained else {}, drained, stats)
        catalog = _demo_catalog(pipeline)
        report = gather(pipeline, result, elapsed_seconds=time.monotonic() - started, log_file=log_file)
    if result.report_text:
        log.info("the published report:\n%s", result.report_text)
    print("\n".join(report.lines()), file=out)
    print(f"catalog of the demo archive: {catalog}", file=out)
    out.flush()
    if args.report_json:
        Path(args.report_json).write_text(json.dumps(_as_json(result), indent=2, sort_keys=True))
    return report.exit_code


def night_progress(pipeline: LocalPipeline, listing: dict[str, object], out: IO[str], *, plain: bool) -> Progress:
    """A Progress over the run record. The total size is not known (the lister records sizes only in the
    messages it sends), so the bar and the time left go by videos."""
    app = pipeline.app
    assert app is not None
    run_id = str(listing["run_id"])

    def read() -> Snapshot | None:
        run = app.state.runs.get(run_id)
        if run is None:
            return None
        done = run.synced + run.failed + run.source_deleted
        return Snapshot(done=done, failed=run.failed, bytes_done=run.bytes_transferred)

    queued = int(str(listing.get("enqueued", 0)))
    return Progress(read, total_videos=queued, total_bytes=None, stream=out, bar=False if plain else None)


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
