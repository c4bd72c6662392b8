"""AWS cost of the archive, service by service: a steady month and the first backfill, and whether a night fits.

The stack's shape comes from the same configuration file the stack is deployed from (`--config`, default
config/personal.json; a bare name such as `prod` means config/examples/prod.json): downloader memory and
concurrency, lifecycle preset, VPC, dashboard, the alarms it creates, log retention, region. Prices come from
scripts/prices.json (one table per region, dated, with its sources); the usage model is the constants below, each
with its reason. Not modelled: the free tier (it is per account and shared with whatever else runs there), taxes,
support plans, data transfer out (restores), and S3 versioning's noncurrent copies.

Example: python scripts/estimate_cost.py --videos 2000 --avg-gb 4 --new-per-night 5 [--vpc] [--mbps 100]
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra_cdk import config_file
from infra_cdk.config_file import ConfigFileError
from infra_cdk.lifecycle import DEEP_ARCHIVE, GLACIER_IR, MINIMUM_DAYS, LifecyclePolicy, lifecycle
from infra_cdk.settings import EnvironmentSettings, alarm_metric_count
from pipeline import resources
from pipeline.config import Settings
from pipeline.observability.metrics import Metric
from pipeline.services.downloader import MAX_CONTINUATIONS, deadline_safety_seconds
from scripts._common import (
    EXIT_OK,
    UsageError,
    print_json,
    setup_logging,
)

NAME = "estimate_cost"
PRICES_FILE = Path(__file__).resolve().with_name("prices.json")
DEFAULT_MBPS = 100.0

GB = 1e9
MB_PER_GB = 1000.0
DAYS_PER_MONTH = 30  # the nightly runs of a month
HOURS_PER_MONTH = 730  # AWS's convention for hourly resources
SECONDS_PER_DAY = 86_400
RUN_INTERVAL_SECONDS = SECONDS_PER_DAY  # one run a night

# --- the stack's shape (mirrors infra_cdk; tests/scripts/test_estimate_cost.py checks they agree) ---------------
INTERFACE_ENDPOINTS = 6  # Secrets Manager, Logs, SQS, SNS, CloudWatch, X-Ray
AVAILABILITY_ZONES = 2
NAT_GATEWAYS = 1
# S3 applies lifecycle rules once a day, at midnight UTC: an object whose rule says N days leaves Standard at the
# first midnight after N days, so it stays at most N + 1 days (infra_cdk/lifecycle.py).
LIFECYCLE_ROUNDING_DAYS = 1
STORAGE_PRICE_KEYS = {GLACIER_IR: "glacier_ir_gb_month", DEEP_ARCHIVE: "deep_archive_gb_month"}
TRANSITION_PRICE_KEYS = {
    GLACIER_IR: "transition_glacier_ir_per_1000",
    DEEP_ARCHIVE: "transition_deep_archive_per_1000",
}

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
SECRETS_CALLS_PER_NIGHT = 2  # lister and summary; plus one per downloader container (the concurrency)
LOG_BYTES_PER_VIDEO = 20_000  # JSON log lines and EMF metrics of one transfer
LOG_BYTES_PER_NIGHT = 200_000  # lister, summary, idle polling
VPC_FLOW_LOG_BYTES_PER_GB = 20_000  # flow records per GB downloaded (large transfers: few, long flows)
# Custom (EMF) metrics are billed per metric, prorated by the hour, and only for hours in which they are sent
# (CloudWatch pricing page). A night that archives something sends these; failure and rotation metrics appear
# only on the nights they happen (not priced: a few cents even then).
NIGHTLY_METRICS = (
    Metric.VIDEOS_LISTED,
    Metric.VIDEOS_ENQUEUED,
    Metric.VIDEOS_SYNCED,
    Metric.BYTES_TRANSFERRED,
    Metric.TRANSFER_DURATION,
    Metric.TRANSFER_THROUGHPUT,
    Metric.TIME_TO_FIRST_BYTE,
)
# The summary arrives 6-10 minutes after the last download (drain detection); its metrics fall in that window.
REPORT_DELAY_SECONDS = 600


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
    downloader_memory_mb: int = resources.DOWNLOADER_MEMORY_MB
    lifecycle: str = "deep-archive"
    dashboard: bool = False
    alarm_metrics: int = 9
    log_retention_days: int = resources.LOG_RETENTION_DAYS
    schedule_minute: int = 0  # the minute of the hour the nightly run starts (metrics are metered by the hour)
    config: str = ""

    @classmethod
    def from_settings(cls, settings: EnvironmentSettings, **library: Any) -> Inputs:
        """The stack's shape from a deployment's settings; `library` gives the videos, sizes and overrides."""
        shape: dict[str, Any] = {
            "vpc": settings.vpc_enabled,
            "region": settings.region,
            "concurrency": settings.downloader_max_concurrency,
            "downloader_memory_mb": settings.downloader.memory_mb,
            "lifecycle": settings.lifecycle,
            "dashboard": settings.dashboard_enabled,
            "alarm_metrics": alarm_metric_count(settings),
            "log_retention_days": settings.log_retention_days,
            "schedule_minute": schedule_minute(settings.schedule_expression),
        }
        shape.update({k: v for k, v in library.items() if v is not None})
        return cls(**shape)


def schedule_minute(expression: str) -> int:
    match = re.match(r"cron\((\d+) ", expression)
    return int(match.group(1)) if match else 0


@dataclass
class Estimate:
    inputs: Inputs
    prices_as_of: str | None
    monthly: dict[str, float] = field(default_factory=dict)
    backfill: dict[str, float] = field(default_factory=dict)
    capacity: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.monthly.values())

    @property
    def backfill_total(self) -> float:
        return sum(self.backfill.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "inputs": asdict(self.inputs),
            "prices_as_of": self.prices_as_of,
            "monthly_usd": {k: round(v, 4) for k, v in self.monthly.items()},
            "total_usd": round(self.total, 4),
            "backfill_usd": {k: round(v, 4) for k, v in self.backfill.items()},
            "backfill_total_usd": round(self.backfill_total, 4),
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


def _add(into: dict[str, float], costs: dict[str, float]) -> None:
    for name, cost in costs.items():
        into[name] = into.get(name, 0.0) + cost


def transfer_costs(count: float, inputs: Inputs, prices: dict[str, Any], settings: Settings) -> dict[str, float]:
    """What archiving `count` videos costs once, whenever it happens: compute, requests, logs, the NAT's bytes,
    and the storage the lifecycle bills before the library's own class (the Standard stay, Glacier IR's
    90-day minimum when the preset passes through it)."""
    policy = lifecycle(inputs.lifecycle)
    gb = count * inputs.avg_gb
    s3 = prices["s3"]
    gb_seconds = count * seconds_per_video(inputs) * inputs.downloader_memory_mb / 1024
    invocations = count * invocations_per_video(inputs, settings)
    costs = {
        "Lambda": gb_seconds * prices["lambda"]["arm64_gb_second"]
        + invocations / 1e6 * prices["lambda"]["per_million_requests"],
        "SQS": count * SQS_REQUESTS_PER_VIDEO / 1e6 * prices["sqs"]["per_million_requests"],
        "DynamoDB": count * DYNAMODB_WRITE_UNITS_PER_VIDEO / 1e6 * prices["dynamodb"]["per_million_write_units"],
        "S3 requests": count * parts_per_video(inputs.avg_gb, settings) / 1000 * s3["put_per_1000"]
        + count * S3_HEADS_PER_VIDEO / 1000 * s3["get_per_1000"]
        + count / 1000 * sum(s3[TRANSITION_PRICE_KEYS[step.storage_class]] for step in policy.transitions),
        "KMS": count * KMS_REQUESTS_PER_VIDEO / 10_000 * prices["kms"]["per_10000_requests"],
    }
    log_gb = count * LOG_BYTES_PER_VIDEO / GB + (gb * VPC_FLOW_LOG_BYTES_PER_GB / GB if inputs.vpc else 0.0)
    retention_months = inputs.log_retention_days / DAYS_PER_MONTH
    cw = prices["cloudwatch"]
    costs["CloudWatch"] = log_gb * cw["logs_ingest_gb"] + log_gb * retention_months * cw["logs_storage_gb_month"]
    costs["CloudWatch"] += invocations / 1e6 * cw["xray_per_million_traces"]
    if inputs.vpc:
        costs["NAT gateway"] = gb * prices["nat"]["per_gb_processed"]
    costs.update(_staging_storage(gb, policy, s3))
    return costs


def _staging_storage(gb: float, policy: LifecyclePolicy, s3: dict[str, Any]) -> dict[str, float]:
    """Storage billed before media reach the class they stay in: Standard until the first transition, and each
    intermediate class for the days it holds them (at least its minimum, which S3 bills anyway)."""
    if not policy.transitions:
        return {}
    costs = {
        "S3 Standard": gb
        * (policy.days_in_standard() + LIFECYCLE_ROUNDING_DAYS)
        / DAYS_PER_MONTH
        * (s3["standard_gb_month"])
    }
    for step, following in zip(policy.transitions, policy.transitions[1:], strict=False):
        days = max(following.after_days - step.after_days, MINIMUM_DAYS[step.storage_class])
        name = f"S3 {_class_label(step.storage_class)}"
        costs[name] = gb * days / DAYS_PER_MONTH * s3[STORAGE_PRICE_KEYS[step.storage_class]]
    return costs


def _class_label(storage_class: str) -> str:
    return {GLACIER_IR: "Glacier Instant Retrieval", DEEP_ARCHIVE: "Glacier Deep Archive"}[storage_class]


def library_storage(inputs: Inputs, prices: dict[str, Any]) -> dict[str, float]:
    """The library in the class it ends in (all of it: an upper bound, the newest nights are still on the way)."""
    policy = lifecycle(inputs.lifecycle)
    gb = inputs.videos * inputs.avg_gb
    if not policy.transitions:
        return {"S3 Standard": gb * prices["s3"]["standard_gb_month"]}
    final = policy.transitions[-1].storage_class
    return {f"S3 {_class_label(final)}": gb * prices["s3"][STORAGE_PRICE_KEYS[final]]}


def running_costs(inputs: Inputs, prices: dict[str, Any], per_video: float) -> dict[str, float]:
    """What the stack costs each month whatever it archives: keys, secret, idle polling, the lister's nightly
    pass over the library, alarms, dashboard, the network."""
    pages = math.ceil(inputs.videos / LISTER_PAGE_SIZE) or 1
    gb_seconds = (
        DAYS_PER_MONTH * pages * LISTER_SECONDS_PER_PAGE * resources.LISTER_MEMORY_MB / 1024
        + DAYS_PER_MONTH * SUMMARY_SECONDS * resources.SUMMARY_MEMORY_MB / 1024
        + ROTATION_INVOCATIONS_PER_MONTH * ROTATION_SECONDS * resources.ROTATION_MEMORY_MB / 1024
    )
    invocations = 2 * DAYS_PER_MONTH + ROTATION_INVOCATIONS_PER_MONTH
    lam = prices["lambda"]
    idle_polls = SQS_IDLE_POLLERS * SECONDS_PER_DAY / SQS_LONG_POLL_SECONDS * DAYS_PER_MONTH
    ddb = prices["dynamodb"]
    secret_calls = (
        SECRETS_CALLS_PER_NIGHT + inputs.concurrency
    ) * DAYS_PER_MONTH + ROTATION_INVOCATIONS_PER_MONTH * 2
    cw = prices["cloudwatch"]
    log_gb = DAYS_PER_MONTH * LOG_BYTES_PER_NIGHT / GB
    costs = {
        "Lambda": gb_seconds * lam["arm64_gb_second"] + invocations / 1e6 * lam["per_million_requests"],
        "SQS": (idle_polls + SQS_OTHER_REQUESTS_PER_NIGHT * DAYS_PER_MONTH)
        / 1e6
        * prices["sqs"]["per_million_requests"],
        "DynamoDB": inputs.videos
        * DYNAMODB_READ_UNITS_PER_LISTED_MEDIUM
        * DAYS_PER_MONTH
        / 1e6
        * ddb["per_million_read_units"]
        + inputs.videos * DYNAMODB_BYTES_PER_MEDIUM / GB * ddb["storage_gb_month"],
        "KMS": prices["kms"]["key_month"]
        + KMS_FIXED_REQUESTS_PER_MONTH / 10_000 * prices["kms"]["per_10000_requests"],
        "Secrets Manager": prices["secrets_manager"]["secret_month"]
        + secret_calls / 10_000 * prices["secrets_manager"]["per_10000_calls"],
        "CloudWatch": metric_hours_per_month(inputs, per_video)
        / HOURS_PER_MONTH
        * len(NIGHTLY_METRICS)
        * cw["metric_month"]
        + inputs.alarm_metrics * cw["alarm_metric_month"]
        + (cw["dashboard_month"] if inputs.dashboard else 0.0)
        + log_gb * cw["logs_ingest_gb"]
        + log_gb * inputs.log_retention_days / DAYS_PER_MONTH * cw["logs_storage_gb_month"]
        + invocations / 1e6 * cw["xray_per_million_traces"],
    }
    if inputs.vpc:
        nat = prices["nat"]
        costs["NAT gateway"] = NAT_GATEWAYS * HOURS_PER_MONTH * (nat["gateway_hour"] + nat["public_ipv4_hour"])
        costs["VPC interface endpoints"] = (
            INTERFACE_ENDPOINTS
            * AVAILABILITY_ZONES
            * HOURS_PER_MONTH
            * prices["vpc_endpoints"]["interface_endpoint_az_hour"]
        )
    return costs


def metric_hours_per_month(inputs: Inputs, per_video: float) -> float:
    """Hours a month in which the nightly metrics are sent: from the run's start to its report, each night."""
    night = math.ceil(inputs.new_per_night / inputs.concurrency) * per_video
    return DAYS_PER_MONTH * math.ceil((inputs.schedule_minute * 60 + night + REPORT_DELAY_SECONDS) / 3600)


ORDER = (
    "Lambda",
    "SQS",
    "DynamoDB",
    "S3 Standard",
    "S3 Glacier Instant Retrieval",
    "S3 Glacier Deep Archive",
    "S3 requests",
    "KMS",
    "Secrets Manager",
    "NAT gateway",
    "VPC interface endpoints",
    "CloudWatch",
)


def _ordered(costs: dict[str, float]) -> dict[str, float]:
    return {name: costs[name] for name in ORDER if name in costs}


def estimate(inputs: Inputs, prices: dict[str, Any], settings: Settings | None = None) -> Estimate:
    settings = settings or Settings()
    result = Estimate(inputs, prices.get("as_of"))
    per_video = seconds_per_video(inputs)
    monthly: dict[str, float] = {}
    _add(monthly, running_costs(inputs, prices, per_video))
    _add(monthly, transfer_costs(inputs.new_per_night * DAYS_PER_MONTH, inputs, prices, settings))
    _add(monthly, library_storage(inputs, prices))
    result.monthly = _ordered(monthly)
    backfill_days = math.ceil(inputs.videos / inputs.concurrency) * per_video / SECONDS_PER_DAY
    result.backfill = _ordered(transfer_costs(inputs.videos, inputs, prices, settings))
    result.capacity = capacity(inputs, per_video, settings)
    floor = inputs.videos * inputs.avg_gb * prices["s3"]["deep_archive_gb_month"]
    result.capacity["deep_archive_floor_usd"] = round(floor, 4)
    result.capacity["total_over_floor"] = round(result.total / floor, 3) if floor else None
    if backfill_days > 1:
        result.notes.append(
            f"the first backfill runs {backfill_days:.1f} days; the running costs of those days are in the "
            "monthly figure, not the backfill's"
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


def print_estimate(result: Estimate) -> None:
    inputs = result.inputs
    print(
        f"{inputs.videos} videos of {inputs.avg_gb:g} GB, {inputs.new_per_night:g} new a night, {inputs.region}"
        f"{', VPC' if inputs.vpc else ''}, lifecycle {inputs.lifecycle}, config {inputs.config}"
        f" (prices as of {result.prices_as_of}, scripts/prices.json: check them against the AWS pricing pages)"
    )
    width = max(len(name) for name in [*result.monthly, *result.backfill])
    print("a steady month:")
    for name, cost in result.monthly.items():
        print(f"  {name:<{width}}  {cost:>10.2f} USD/month")
    print(f"  {'Total':<{width}}  {result.total:>10.2f} USD/month")
    cap = result.capacity
    print(
        f"  ({cap['total_over_floor']:.2f}x the library's Deep Archive storage alone, "
        f"{cap['deep_archive_floor_usd']:.2f} USD/month)"
    )
    print(f"the first backfill (archiving the whole library once, {cap['backfill_days']:.2f} days):")
    for name, cost in result.backfill.items():
        print(f"  {name:<{width}}  {cost:>10.2f} USD once")
    print(f"  {'Total':<{width}}  {result.backfill_total:>10.2f} USD once")
    verdict = "finishes" if cap["finishes_before_next_run"] else "does NOT finish"
    pace = f"{cap['seconds_per_video']:.0f} s per video at {inputs.mbps:g} Mbit/s, {cap['concurrency']} at a time"
    print(f"capacity: {pace}: a night's work takes {cap['night_hours']:.2f} h and {verdict} before the next run")
    if not cap["video_fits_continuation_cap"]:
        print("warning: one video takes longer than the downloader's continuation cap; it would end FAILED")
    for note in result.notes:
        print(f"note: {note}")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(config_file.REPO_ROOT))
    except ValueError:
        return str(path)


def execute(args: Any) -> int:
    setup_logging(args)
    try:
        deployment = config_file.load(args.config, require_alert_email=False)
    except ConfigFileError as exc:
        raise UsageError(str(exc)) from None
    inputs = Inputs.from_settings(
        deployment,
        videos=args.videos,
        avg_gb=args.avg_gb,
        new_per_night=args.new_per_night,
        mbps=args.mbps,
        vpc=args.vpc,
        region=args.region,
        concurrency=args.concurrency,
        config=_shown(config_file.resolve(args.config)),
    )
    try:
        prices = load_prices(inputs.region)
    except PriceTableError as exc:
        raise UsageError(str(exc)) from None
    result = estimate(inputs, prices)
    if args.json:
        print_json(result.as_json())
    else:
        print_estimate(result)
    return EXIT_OK
