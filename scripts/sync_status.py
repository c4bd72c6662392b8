"""Where the archive stands: media per status, the last run, failed media with their errors, work in progress.

Reads the state table through its status index (one COUNT query per status, never a scan of the media), the run
records (the latest run, with the hosts its download links pointed to: what `ALLOWED_DOWNLOAD_HOSTS` pins, see
docs/operations.md), and the download and dead-letter queues' depths. In-progress media are listed with how
long they have been in progress and whether their worker's lease has run out (a crashed worker: the next
delivery of its message takes the medium over).

Example: python scripts/sync_status.py --env prod --json
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # `python scripts/sync_status.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pipeline.clock import iso_z, parse_iso_utc, utc_now
from pipeline.state import MediaRecord, MediaStatus, RunRecord, StateStore
from scripts._common import (
    EXIT_OK,
    Context,
    ScriptParser,
    aws_call,
    load_context,
    make_parser,
    positive_int,
    print_json,
    queue_depth,
    queue_url,
    run,
    setup_logging,
)

NAME = "sync_status"
DEFAULT_LIMIT = 50


def build_parser() -> ScriptParser:
    parser = make_parser(NAME, __doc__ or "")
    parser.add_argument("--provider", help="only this provider's media (default: all)")
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=DEFAULT_LIMIT,
        help="at most this many failed and in-progress media each (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    return parser


def _age_seconds(stamp: str | None, now: datetime) -> float | None:
    if not stamp:
        return None
    try:
        return round((now - parse_iso_utc(stamp)).total_seconds(), 1)
    except ValueError:
        return None


def failed_entry(record: MediaRecord) -> dict[str, Any]:
    return {
        "provider": record.provider,
        "media_id": record.media_id,
        "filename": record.filename,
        "attempts": record.attempts,
        "failed_since": record.sync_timestamp,
        "run_id": record.run_id,
        "error": record.last_error,
    }


def in_progress_entry(record: MediaRecord, now: datetime) -> dict[str, Any]:
    lease = record.lease_expires_at
    return {
        "provider": record.provider,
        "media_id": record.media_id,
        "filename": record.filename,
        "since": record.sync_timestamp,
        "age_seconds": _age_seconds(record.sync_timestamp, now),
        "lease_expires_at": iso_z(lease) if lease else None,
        "lease_expired": not record.lease_live(now),
        "attempts": record.attempts,
    }


def run_entry(run_record: RunRecord | None) -> dict[str, Any] | None:
    return asdict(run_record) if run_record else None


def collect(ctx: Context, provider: str | None, limit: int, now: datetime | None = None) -> dict[str, Any]:
    """The whole status as one JSON-ready document."""
    moment = now or utc_now()
    table = ctx.settings.table_name
    state = StateStore.from_settings(ctx.settings)
    with aws_call(f"table {table}", ctx):
        counts = state.media.count_by_status(provider=provider)
        runs = state.runs.latest(1, provider=provider)
        failed = state.media.list_by_status(MediaStatus.FAILED, limit, provider=provider)
        in_progress = state.media.list_by_status(MediaStatus.IN_PROGRESS, limit, provider=provider)
    queues = {
        "downloads": queue_depth(ctx, queue_url(ctx, ctx.names.queue), ctx.names.queue),
        "dead_letter": queue_depth(ctx, queue_url(ctx, ctx.names.dead_letter_queue), ctx.names.dead_letter_queue),
    }
    return {
        "environment": ctx.settings.environment,
        "table": table,
        "provider": provider,
        "generated_at": iso_z(moment),
        "counts": {status.value: counts.get(status, 0) for status in MediaStatus},
        "total": sum(counts.values()),
        "queues": queues,
        "last_run": run_entry(runs[0] if runs else None),
        "failed": [failed_entry(r) for r in failed],
        "in_progress": [in_progress_entry(r, moment) for r in in_progress],
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def print_status(status: dict[str, Any]) -> None:
    counts = status["counts"]
    print(f"gopro-sync {status['environment']}: table {status['table']}, {status['generated_at']}")
    print(
        "media: " + "  ".join(f"{name} {count}" for name, count in counts.items()) + f"  (total {status['total']})"
    )
    downloads, dead = status["queues"]["downloads"], status["queues"]["dead_letter"]
    print(
        f"queues: downloads {downloads['visible']} waiting, {downloads['in_flight']} in flight;"
        f" dead-letter {dead['visible'] + dead['in_flight']}"
    )
    last = status["last_run"]
    if last is None:
        print("last run: none recorded")
    else:
        state = "listing done" if last["listing_done"] else "listing still running"
        if last["lister_error"]:
            state = f"lister error: {last['lister_error']}"
        report = f", report sent {last['report_sent_at']}" if last["report_sent_at"] else ", no report sent yet"
        synced = f"synced {last['synced']} ({_size(last['bytes_transferred'])})"
        counts_line = f"listed {last['listed']}, enqueued {last['enqueued']}, {synced}, failed {last['failed']}"
        print(
            f"last run: {last['run_id']} ({last['provider']}) started {last['started_at']}: {counts_line},"
            f" deleted at source {last['source_deleted']}; {state}{report}"
        )
        hosts = last.get("content_hosts") or []
        print(f"download hosts of the last run: {', '.join(hosts) if hosts else 'none recorded'}")
    print(f"failed media ({len(status['failed'])} shown, {counts[MediaStatus.FAILED.value]} in all):")
    for entry in status["failed"]:
        print(
            f"  {entry['provider']}/{entry['media_id']}  attempts {entry['attempts']}"
            f"  since {entry['failed_since']}  error: {entry['error'] or '?'}"
        )
    print(f"in progress ({len(status['in_progress'])} shown, {counts[MediaStatus.IN_PROGRESS.value]} in all):")
    for entry in status["in_progress"]:
        lease = (
            "lease expired (worker gone; the next delivery takes over)"
            if entry["lease_expired"]
            else (f"lease until {entry['lease_expires_at']}")
        )
        print(f"  {entry['provider']}/{entry['media_id']}  for {_duration(entry['age_seconds'])}  {lease}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    ctx = load_context(args)
    status = collect(ctx, args.provider, args.limit)
    if args.json:
        print_json(status)
    else:
        print_status(status)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run(NAME, main))
