"""Getting videos back: restore archived media from the cold storage classes, follow the restore, fetch them.

    restore.py [request] SELECTORS [--tier Bulk|Standard|Expedited] [--days N] [--yes]
    restore.py status [SELECTORS]
    restore.py fetch SELECTORS --to DIR   (or --links)

`request` (the default) first prints what it would do: the media, their objects (every chapter of a chaptered
recording), the bytes, the retrieval tier, the expected wait and the cost from scripts/prices.json (the cost
estimator's table). Only with `--yes` does it ask S3, and asking twice is harmless: an object already thawing
or restored is not asked again. The request is recorded in the state table, so the stack's completion handler
sends one message when all of it is ready. Objects in an instantly readable class (Standard, Glacier Instant
Retrieval) need no restore. `status` says what is thawing and what is ready until when; `fetch` downloads what is
readable (parallel ranged reads, resumable, verified against the archived CRC32C, original file names) or prints
presigned links.

Example: python scripts/restore.py --env prod --since 2025-07-01 --until 2025-07-31 --camera "HERO11 Black"
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from pipeline.clock import iso_utc, utc_now
from pipeline.services.restore_ledger import RestoreLedger, RestoreObject, RestoreRequest
from pipeline.state import StateStore
from scripts import _estimate_cost as estimate_cost
from scripts._archive import (
    ArchivedFile,
    Medium,
    archive_bucket,
    has_selector,
    load_archive,
    select,
    selected_records,
)
from scripts._common import (
    EXIT_FAILED,
    EXIT_OK,
    Context,
    UsageError,
    aws_call,
    error_code,
    load_context,
    print_json,
    setup_logging,
)
from scripts._restore_fetch import FetchError, RangedFetch, local_name

NAME = "restore"
TIERS = ("Bulk", "Standard", "Expedited")
# Expected wait per storage class and tier (S3 user guide, "Archive retrieval options").
WAITS = {
    ("DEEP_ARCHIVE", "Standard"): "within 12 hours",
    ("DEEP_ARCHIVE", "Bulk"): "within 48 hours",
    ("GLACIER", "Expedited"): "1-5 minutes",
    ("GLACIER", "Standard"): "3-5 hours",
    ("GLACIER", "Bulk"): "5-12 hours",
}
PRICE_PREFIX = {"DEEP_ARCHIVE": "deep_archive", "GLACIER": "glacier"}
GB = 10**9
ALREADY_IN_PROGRESS = "RestoreAlreadyInProgress"


@dataclass
class Plan:
    tier: str
    days: int
    to_restore: list[tuple[Medium, ArchivedFile]] = field(default_factory=list)
    thawing: list[tuple[Medium, ArchivedFile]] = field(default_factory=list)
    readable: list[tuple[Medium, ArchivedFile]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(f.size for _, f in self.to_restore)

    def media(self) -> list[str]:
        return sorted({m.media_id for m, _ in self.to_restore})


def make_plan(media: Sequence[Medium], tier: str, days: int) -> Plan:
    plan = Plan(tier=tier, days=days)
    for medium in media:
        for f in medium.files:
            if f.readable:
                plan.readable.append((medium, f))
            elif f.restoring:
                plan.thawing.append((medium, f))
            else:
                plan.to_restore.append((medium, f))
    refused = sorted({f.storage_class for _, f in plan.to_restore if (f.storage_class, tier) not in WAITS})
    if refused:
        raise UsageError(f"the {tier} tier is not offered for {', '.join(refused)}; use Standard or Bulk")
    return plan


def costs(plan: Plan, prices: dict[str, Any]) -> dict[str, Any]:
    """Retrieval (per GB and per request of the tier) and the restored copy's storage (Standard rate, `days`)."""
    retrieval = prices["s3_retrieval"]
    per_class: dict[str, dict[str, float]] = {}
    for _, f in plan.to_restore:
        entry = per_class.setdefault(f.storage_class, {"objects": 0, "gb": 0.0})
        entry["objects"] += 1
        entry["gb"] += f.size / GB
    lines: dict[str, float] = {}
    for storage_class, entry in sorted(per_class.items()):
        prefix = f"{PRICE_PREFIX[storage_class]}_{plan.tier.lower()}"
        lines[f"{storage_class} {plan.tier} retrieval"] = (
            entry["gb"] * retrieval[f"{prefix}_per_gb"] + entry["objects"] / 1000 * retrieval[f"{prefix}_per_1000"]
        )
    gb = plan.bytes / GB
    lines[f"restored copies in Standard for {plan.days} days"] = (
        gb * prices["s3"]["standard_gb_month"] * plan.days / 30
    )
    total = sum(lines.values())
    return {
        "lines": {k: round(v, 6) for k, v in lines.items()},
        "total_usd": round(total, 6),
        "download_to_internet_usd": round(gb * retrieval["transfer_out_per_gb"], 6),
        "prices_as_of": prices.get("as_of"),
    }


def describe(plan: Plan, prices: dict[str, Any]) -> dict[str, Any]:
    waits = sorted({WAITS[(f.storage_class, plan.tier)] for _, f in plan.to_restore})
    return {
        "tier": plan.tier,
        "days": plan.days,
        "media": plan.media(),
        "objects": [
            {"media_id": m.media_id, "key": f.key, "size": f.size, "class": f.storage_class}
            for m, f in plan.to_restore
        ],
        "bytes": plan.bytes,
        "expected_wait": waits,
        "cost": costs(plan, prices),
        "already_thawing": [f.key for _, f in plan.thawing],
        "readable_now": [f.key for _, f in plan.readable],
    }


def issue(ctx: Context, bucket: str, plan: Plan, ledger: RestoreLedger) -> dict[str, Any]:
    """Asks S3 to restore each object of the plan; an object already thawing is counted, not an error."""
    s3 = ctx.client("s3")
    asked, already = [], []
    for medium, f in plan.to_restore:
        try:
            s3.restore_object(
                Bucket=bucket,
                Key=f.key,
                RestoreRequest={"Days": plan.days, "GlacierJobParameters": {"Tier": plan.tier}},
            )
            asked.append((medium, f))
        except ClientError as exc:
            if error_code(exc) != ALREADY_IN_PROGRESS:
                raise
            already.append((medium, f))
    request_id = f"{utc_now().strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    if asked:
        ledger.record(
            RestoreRequest(
                request_id=request_id,
                tier=plan.tier,
                days=plan.days,
                requested_at=iso_utc(utc_now()),
                objects=tuple(RestoreObject(f.key, m.media_id, f.filename, f.size) for m, f in asked),
            )
        )
    return {
        "request_id": request_id if asked else None,
        "requested": [f.key for _, f in asked],
        "already_thawing": [f.key for _, f in [*plan.thawing, *already]],
    }


def status(media: Sequence[Medium]) -> list[dict[str, Any]]:
    return [
        {
            "media_id": m.media_id,
            "state": m.state,
            "objects": [
                {"key": f.key, "class": f.storage_class, "state": f.state, "ready_until": f.restored_until}
                for f in m.files
            ],
        }
        for m in media
    ]


def disposition(name: str) -> str:
    """Content-Disposition that names the download after the original file (RFC 6266, UTF-8 form too)."""
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name)}"


def fetch(ctx: Context, bucket: str, media: Sequence[Medium], args: Any) -> tuple[dict[str, Any], bool]:
    s3 = ctx.client("s3")
    report: dict[str, Any] = {"fetched": [], "not_ready": [], "failed": [], "links": []}
    for medium in media:
        for f in medium.files:
            if not f.readable:
                report["not_ready"].append({"key": f.key, "state": f.state})
                continue
            name = local_name(f.filename, f.key.rsplit("/", 1)[-1])
            if args.links:
                link = s3.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": bucket, "Key": f.key, "ResponseContentDisposition": disposition(name)},
                    ExpiresIn=args.link_hours * 3600,
                )
                report["links"].append({"key": f.key, "filename": name, "link": link})
                continue
            target = args.to / medium.media_id / name
            job = RangedFetch(
                s3,
                bucket,
                f.key,
                size=f.size,
                expected_crc32c=f.crc32c,
                target=target,
                part_bytes=args.part_bytes,
                workers=args.workers,
            )
            try:
                outcome = job.run()
            except (FetchError, ClientError, OSError) as exc:
                report["failed"].append({"key": f.key, "error": str(exc)})
                continue
            report["fetched"].append({"key": f.key, "path": str(target), "outcome": outcome})
    return report, not report["failed"] and not report["not_ready"]


def execute(args: Any) -> int:
    if args.command != "status" and not has_selector(args):
        raise UsageError("say which media: --media-id, --since/--until, --camera, --type or --name")
    if args.command == "fetch" and not (args.to or args.links):
        raise UsageError("fetch needs --to DIR or --links")
    setup_logging(args)
    ctx = load_context(args)
    bucket = archive_bucket(ctx, args)
    state = StateStore.from_settings(ctx.settings)
    with aws_call(f"table {ctx.settings.table_name}", ctx):
        records = selected_records(state, args, ctx.settings.provider)
    with aws_call(f"bucket {bucket}", ctx):
        media = select(load_archive(ctx.client("s3"), bucket, records), args)
        if args.command == "status":
            print_json(status(media))
            return EXIT_OK
        if args.command == "fetch":
            report, ok = fetch(ctx, bucket, media, args)
            print_json(report)
            return EXIT_OK if ok else EXIT_FAILED
        plan = make_plan(media, args.tier, args.days)
        prices = estimate_cost.load_prices(ctx.settings.aws_region)
        document = {"dry_run": not args.yes, **describe(plan, prices)}
        if args.yes and plan.to_restore:
            with aws_call(f"table {ctx.settings.table_name}", ctx):
                document["issued"] = issue(ctx, bucket, plan, RestoreLedger(state.client, state.table_name))
        print_json(document)
    return EXIT_OK
