"""Monthly AWS cost of the archive, service by service, and whether a night's downloads finish before the next run.

Prices come from scripts/prices.json (one table, dated, with its sources); the usage model is the constants below,
each with its reason. The sizes of the functions, the downloader's concurrency and the part size are the
pipeline's own (pipeline/resources.py, pipeline/config.py). Not modelled: the free tier, taxes, support plans,
data transfer out (restores), and S3 versioning's noncurrent copies.

Example: python scripts/estimate_cost.py --videos 2000 --avg-gb 4 --new-per-night 5 --vpc --mbps 100
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # `python scripts/estimate_cost.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline import resources
from pipeline.config import Settings
from pipeline.observability.metrics import Metric
from pipeline.services.downloader import MAX_CONTINUATIONS, deadline_safety_seconds
from scripts._common import (
    EXIT_OK,
    ScriptParser,
    UsageError,
    make_parser,
    non_negative_float,
    positive_float,
    positive_int,
    print_json,
    run,
    setup_logging,
)

NAME = "estimate_cost"
PRICES_FILE = Path(__file__).resolve().with_name("prices.json")
DEFAULT_REGION = "eu-west-1"
DEFAULT_MBPS = 100.0

GB = 1e9
MB_PER_GB = 1000.0
DAYS_PER_MONTH = 30  # the nightly runs of a month
HOURS_PER_MONTH = 730  # AWS's convention for hourly resources
SECONDS_PER_DAY = 86_400
RUN_INTERVAL_SECONDS = SECONDS_PER_DAY  # one run a night (resources.SCHEDULE_CRON)

# --- the stack's shape (mirrors infra_cdk; tests/scripts/test_estimate_cost.py checks they agree) ---------------
# Read here instead of importing infra_cdk, which starts the CDK's Node runtime.
GLACIER_IR_AFTER_DAYS = 7
DEEP_ARCHIVE_AFTER_DAYS = 14
INTERFACE_ENDPOINTS = 6  # Secrets Manager, Logs, SQS, SNS, CloudWatch, X-Ray
AVAILABILITY_ZONES = 2
NAT_GATEWAYS = 1
DASHBOARDS = 1
# Metrics in alarms: one per simple alarm (failed videos, auth, low throughput, 2 per function x 4, DLQ, failed
# invocations) plus three in the drain alarm's math and two in the rotation alarm's.
ALARM_METRICS = 20

# --- usage model: what one video and one night cost in requests -------------------------------------------------
LISTER_PAGE_SIZE = 100
LISTER_SECONDS_PER_PAGE = 1.0  # one provider page + one BatchGetItem + the sends
SUMMARY_SECONDS = 2.0
ROTATION_INVOCATIONS_PER_MONTH = 4 * DAYS_PER_MONTH / resources.SECRET_ROTATION_DAYS
ROTATION_SECONDS = 3.0
# SQS per video: SendMessageBatch share (1/10), the event source's receive and delete.
SQS_REQUESTS_PER_VIDEO = 0.1 + 1 + 1
# The event source mapping long-polls even when the queue is idle: about 5 pollers, one 20 s receive each.
SQS_IDLE_POLLERS = 5
SQS_LONG_POLL_SECONDS = 20
SQS_OTHER_REQUESTS_PER_NIGHT = 4  # the summary's queue depths
# DynamoDB write units per video: claim, one lease renewal, completion, each also written to the status index
# (projection ALL), plus the run counter; the lister reads every medium once a night (eventually consistent, an
# item under 4 KB: half a read unit).
DYNAMODB_WRITE_UNITS_PER_VIDEO = 3 * 2 + 1
DYNAMODB_READ_UNITS_PER_LISTED_MEDIUM = 0.5
DYNAMODB_BYTES_PER_MEDIUM = 2 * 1000  # the item and its index copy
S3_HEADS_PER_VIDEO = 1  # the idempotency check
KMS_REQUESTS_PER_VIDEO = 3  # S3 (bucket key), SQS and DynamoDB data keys: cached, so a few per video at most
KMS_FIXED_REQUESTS_PER_MONTH = 20_000  # data-key refreshes of idle pollers and functions
SECRETS_CALLS_PER_NIGHT = 2 + resources.DOWNLOADER_MAX_CONCURRENCY  # lister, summary, one per downloader container
LOG_BYTES_PER_VIDEO = 20_000  # JSON log lines and EMF metrics of one transfer
LOG_BYTES_PER_NIGHT = 200_000  # lister, summary, idle polling
LOG_RETENTION_MONTHS = resources.LOG_RETENTION_DAYS / DAYS_PER_MONTH
VPC_FLOW_LOG_BYTES_PER_GB = 20_000  # flow records per GB downloaded (large transfers: few, long flows)


class PriceTableError(ValueError):
    pass


def load_prices(region: str, path: Path = PRICES_FILE) -> dict[str, Any]:
    table = json.loads(path.read_text(encoding="utf-8"))
    regions = table.get("regions", {})
    if region not in regions:
        raise PriceTableError(
            f"no prices for region {region!r} in {path.name}; known: {', '.join(sorted(regions))}"
        )
    return {"as_of": table.get("as_of"), **regions[region]}


@dataclass(frozen=True)
class Inputs:
    videos: int  # videos in the library (archived)
    avg_gb: float  # average video size, GB (10^9 bytes)
    new_per_night: float  # new videos per night
    vpc: bool
    region: str
    mbps: float  # throughput of one download, Mbit/s
    concurrency: int = resources.DOWNLOADER_MAX_CONCURRENCY


@dataclass
class Estimate:
    inputs: Inputs
    prices_as_of: str | None
    monthly: dict[str, float] = field(default_factory=dict)
    capacity: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.monthly.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "inputs": asdict(self.inputs),
            "prices_as_of": self.prices_as_of,
            "monthly_usd": {k: round(v, 4) for k, v in self.monthly.items()},
            "total_usd": round(self.total, 4),
            "capacity": self.capacity,
            "notes": self.notes,
        }


def parts_per_video(avg_gb: float, settings: Settings) -> int:
    """S3 PUT-class requests of one upload: one PUT, or create + parts + complete."""
    size = avg_gb * GB
    if size <= settings.multipart_threshold_bytes:
        return 1
    return math.ceil(size / settings.part_size_bytes) + 2


def seconds_per_video(inputs: Inputs) -> float:
    return inputs.avg_gb * MB_PER_GB * 8 / inputs.mbps


def usable_seconds(settings: Settings) -> float:
    """Transfer time in one downloader invocation: its timeout less the margin it keeps for a clean stop."""
    return resources.DOWNLOADER_TIMEOUT_SECONDS - deadline_safety_seconds(settings)


def invocations_per_video(inputs: Inputs, settings: Settings) -> int:
    """A transfer longer than one invocation continues in fresh ones (the downloader's deadline checkpoint)."""
    return max(1, math.ceil(seconds_per_video(inputs) / usable_seconds(settings)))


def estimate(inputs: Inputs, prices: dict[str, Any], settings: Settings | None = None) -> Estimate:
    settings = settings or Settings()
    result = Estimate(inputs, prices.get("as_of"))
    monthly = result.monthly
    new_videos = inputs.new_per_night * DAYS_PER_MONTH
    new_gb = new_videos * inputs.avg_gb
    per_video = seconds_per_video(inputs)
    downloader_invocations = new_videos * invocations_per_video(inputs, settings)
    pages = math.ceil(inputs.videos / LISTER_PAGE_SIZE) or 1

    lam = prices["lambda"]
    gb_seconds = (
        new_videos * per_video * resources.DOWNLOADER_MEMORY_MB / 1024
        + DAYS_PER_MONTH * pages * LISTER_SECONDS_PER_PAGE * resources.LISTER_MEMORY_MB / 1024
        + DAYS_PER_MONTH * SUMMARY_SECONDS * resources.SUMMARY_MEMORY_MB / 1024
        + ROTATION_INVOCATIONS_PER_MONTH * ROTATION_SECONDS * resources.ROTATION_MEMORY_MB / 1024
    )
    invocations = downloader_invocations + 2 * DAYS_PER_MONTH + ROTATION_INVOCATIONS_PER_MONTH
    monthly["Lambda"] = gb_seconds * lam["arm64_gb_second"] + invocations / 1e6 * lam["per_million_requests"]

    idle_polls = SQS_IDLE_POLLERS * SECONDS_PER_DAY / SQS_LONG_POLL_SECONDS * DAYS_PER_MONTH
    sqs_requests = new_videos * SQS_REQUESTS_PER_VIDEO + idle_polls + SQS_OTHER_REQUESTS_PER_NIGHT * DAYS_PER_MONTH
    monthly["SQS"] = sqs_requests / 1e6 * prices["sqs"]["per_million_requests"]

    ddb = prices["dynamodb"]
    monthly["DynamoDB"] = (
        new_videos * DYNAMODB_WRITE_UNITS_PER_VIDEO / 1e6 * ddb["per_million_write_units"]
        + inputs.videos
        * DYNAMODB_READ_UNITS_PER_LISTED_MEDIUM
        * DAYS_PER_MONTH
        / 1e6
        * ddb["per_million_read_units"]
        + inputs.videos * DYNAMODB_BYTES_PER_MEDIUM / GB * ddb["storage_gb_month"]
    )

    s3 = prices["s3"]
    # Standard holds each night's videos for GLACIER_IR_AFTER_DAYS; Glacier IR bills its 90-day minimum even though
    # the lifecycle moves them on after DEEP_ARCHIVE_AFTER_DAYS; Deep Archive holds the library.
    monthly["S3 Standard"] = inputs.new_per_night * GLACIER_IR_AFTER_DAYS * inputs.avg_gb * s3["standard_gb_month"]
    glacier_days = max(DEEP_ARCHIVE_AFTER_DAYS - GLACIER_IR_AFTER_DAYS, s3["glacier_ir_minimum_days"])
    monthly["S3 Glacier Instant Retrieval"] = new_gb * glacier_days / DAYS_PER_MONTH * s3["glacier_ir_gb_month"]
    monthly["S3 Glacier Deep Archive"] = inputs.videos * inputs.avg_gb * s3["deep_archive_gb_month"]
    monthly["S3 requests"] = (
        new_videos * parts_per_video(inputs.avg_gb, settings) / 1000 * s3["put_per_1000"]
        + new_videos * S3_HEADS_PER_VIDEO / 1000 * s3["get_per_1000"]
        + new_videos / 1000 * (s3["transition_glacier_ir_per_1000"] + s3["transition_deep_archive_per_1000"])
    )

    kms = prices["kms"]
    kms_requests = new_videos * KMS_REQUESTS_PER_VIDEO + KMS_FIXED_REQUESTS_PER_MONTH
    monthly["KMS"] = kms["key_month"] + kms_requests / 10_000 * kms["per_10000_requests"]

    sm = prices["secrets_manager"]
    secret_calls = SECRETS_CALLS_PER_NIGHT * DAYS_PER_MONTH + ROTATION_INVOCATIONS_PER_MONTH * 2
    monthly["Secrets Manager"] = sm["secret_month"] + secret_calls / 10_000 * sm["per_10000_calls"]

    if inputs.vpc:
        nat = prices["nat"]
        monthly["NAT gateway"] = (
            NAT_GATEWAYS * HOURS_PER_MONTH * (nat["gateway_hour"] + nat["public_ipv4_hour"])
            + new_gb * nat["per_gb_processed"]
        )
        endpoints = prices["vpc_endpoints"]
        monthly["VPC interface endpoints"] = (
            INTERFACE_ENDPOINTS * AVAILABILITY_ZONES * HOURS_PER_MONTH * endpoints["interface_endpoint_az_hour"]
        )

    cw = prices["cloudwatch"]
    log_gb = (new_videos * LOG_BYTES_PER_VIDEO + DAYS_PER_MONTH * LOG_BYTES_PER_NIGHT) / GB
    if inputs.vpc:
        log_gb += new_gb * VPC_FLOW_LOG_BYTES_PER_GB / GB
    traces = downloader_invocations + 2 * DAYS_PER_MONTH
    monthly["CloudWatch"] = (
        len(Metric) * cw["metric_month"]
        + ALARM_METRICS * cw["alarm_metric_month"]
        + DASHBOARDS * cw["dashboard_month"]
        + log_gb * cw["logs_ingest_gb"]
        + log_gb * LOG_RETENTION_MONTHS * cw["logs_storage_gb_month"]
        + traces / 1e6 * cw["xray_per_million_traces"]
    )

    result.capacity = capacity(inputs, per_video, settings)
    if glacier_days > DEEP_ARCHIVE_AFTER_DAYS - GLACIER_IR_AFTER_DAYS:
        result.notes.append(
            f"Glacier Instant Retrieval bills {s3['glacier_ir_minimum_days']} days per object although the "
            f"lifecycle keeps media there {DEEP_ARCHIVE_AFTER_DAYS - GLACIER_IR_AFTER_DAYS} days"
        )
    return result


def capacity(inputs: Inputs, per_video: float, settings: Settings) -> dict[str, Any]:
    """Does a night's work finish before the next run? (All videos of average size, `concurrency` at a time.)"""
    waves = math.ceil(inputs.new_per_night / inputs.concurrency)
    night_seconds = waves * per_video
    backfill_seconds = math.ceil(inputs.videos / inputs.concurrency) * per_video
    cap = MAX_CONTINUATIONS * usable_seconds(settings)
    return {
        "concurrency": inputs.concurrency,
        "seconds_per_video": round(per_video, 1),
        "invocations_per_video": invocations_per_video(inputs, settings),
        "night_hours": round(night_seconds / 3600, 2),
        "finishes_before_next_run": night_seconds <= RUN_INTERVAL_SECONDS,
        "video_fits_continuation_cap": per_video <= cap,
        "backfill_days": round(backfill_seconds / SECONDS_PER_DAY, 2),
    }


# --- command line ---------------------------------------------------------------------------------------------


def build_parser() -> ScriptParser:
    parser = make_parser(NAME, __doc__ or "", aws=False)
    parser.add_argument("--videos", type=positive_int, required=True, help="videos in the library")
    parser.add_argument("--avg-gb", type=positive_float, required=True, help="average video size in GB")
    parser.add_argument("--new-per-night", type=non_negative_float, required=True, help="new videos per night")
    parser.add_argument("--vpc", action="store_true", help="the stack runs in a VPC (NAT gateway, endpoints)")
    parser.add_argument("--region", default=DEFAULT_REGION, help="price region (default %(default)s)")
    parser.add_argument(
        "--mbps",
        type=positive_float,
        default=DEFAULT_MBPS,
        help="throughput of one download (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=resources.DOWNLOADER_MAX_CONCURRENCY,
        help="parallel downloads (default: the stack's %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")
    return parser


def print_estimate(result: Estimate) -> None:
    inputs = result.inputs
    print(
        f"{inputs.videos} videos of {inputs.avg_gb:g} GB, {inputs.new_per_night:g} new a night, {inputs.region}"
        f"{', VPC' if inputs.vpc else ''} (prices as of {result.prices_as_of}, scripts/prices.json)"
    )
    width = max(len(name) for name in result.monthly)
    for name, cost in result.monthly.items():
        print(f"  {name:<{width}}  {cost:>10.2f} USD/month")
    print(f"  {'Total':<{width}}  {result.total:>10.2f} USD/month")
    cap = result.capacity
    verdict = "finishes" if cap["finishes_before_next_run"] else "does NOT finish"
    pace = f"{cap['seconds_per_video']:.0f} s per video at {inputs.mbps:g} Mbit/s, {cap['concurrency']} at a time"
    print(f"capacity: {pace}: a night's work takes {cap['night_hours']:.2f} h and {verdict} before the next run")
    print(f"backfill of the whole library: {cap['backfill_days']:.2f} days")
    if not cap["video_fits_continuation_cap"]:
        print("warning: one video takes longer than the downloader's continuation cap; it would end FAILED")
    for note in result.notes:
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    try:
        prices = load_prices(args.region)
    except PriceTableError as exc:
        raise UsageError(str(exc)) from None
    inputs = Inputs(
        videos=args.videos,
        avg_gb=args.avg_gb,
        new_per_night=args.new_per_night,
        vpc=args.vpc,
        region=args.region,
        mbps=args.mbps,
        concurrency=args.concurrency,
    )
    result = estimate(inputs, prices)
    if args.json:
        print_json(result.as_json())
    else:
        print_estimate(result)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run(NAME, main))
