"""Where the archive stands: media per status, the last run, failed media with their errors, work in progress.

Reads the state table through its status index (one COUNT query per status, never a scan of the media), the run
records (the latest run, with the hosts its download links pointed to: what `ALLOWED_DOWNLOAD_HOSTS` pins, see
docs/operations.md), and the download and dead-letter queues' depths. In-progress media are listed with how
long they have been in progress and whether their worker's lease has run out (a crashed worker: the next
delivery of its message takes the medium over).

Exit code 5 when media failed or messages wait in the dead-letter queue, so it serves as a check.

Example: gopro-s3-sync status --env prod --json
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pipeline.clock import iso_z, parse_iso_utc, utc_now
from pipeline.providers import registry
from pipeline.services.report_text import size
from pipeline.state import MediaRecord, MediaStatus, RunRecord, StateStore
from scripts._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    Context,
    UsageError,
    aws_call,
    load_context,
    print_json,
    print_jsonl,
    queue_depth,
    queue_url,
    setup_logging,
)

NAME = "sync_status"
DEFAULT_LIMIT = 50


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
        synced = f"synced {last['synced']} ({size(last['bytes_transferred'])})"
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


def problems(status: dict[str, Any]) -> bool:
    """Failed media or dead letters: what makes `status` a check (exit 5)."""
    return bool(status["counts"].get(MediaStatus.FAILED.value) or status["queues"]["dead_letter"]["visible"])


def stream(status: dict[str, Any]) -> list[dict[str, Any]]:
    """`--jsonl`: the summary first (counts, queues, last run), then one object per failed / in-progress medium."""
    summary = {key: value for key, value in status.items() if key not in ("failed", "in_progress")}
    return [
        {"record": "summary", **summary},
        *({"record": "failed", **entry} for entry in status["failed"]),
        *({"record": "in_progress", **entry} for entry in status["in_progress"]),
    ]


def execute(args: Any) -> int:
    if args.provider and args.provider not in registry.names():
        raise UsageError(f"unknown provider {args.provider!r} (known: {', '.join(registry.names())})")
    setup_logging(args)
    ctx = load_context(args)
    status = collect(ctx, args.provider, args.limit)
    if args.json:
        print_json(status)
    elif args.jsonl:
        print_jsonl(stream(status))
    else:
        print_status(status)
    return EXIT_FINDINGS if problems(status) else EXIT_OK
