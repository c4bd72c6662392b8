"""scripts/estimate_cost.py: its figures against a hand computation, the capacity verdict, the price table."""

from __future__ import annotations

import json

import pytest

from pipeline.observability.metrics import Metric
from scripts import estimate_cost

BASE = ["--videos", "1000", "--avg-gb", "2", "--new-per-night", "4", "--mbps", "80", "--json"]


def run_json(run_script, *argv: str) -> dict:
    result = run_script(estimate_cost, list(argv))
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_figures_match_a_hand_computation(run_script) -> None:
    """1,000 videos of 2 GB, 4 new a night (120 a month, 240 GB), 80 Mbit/s: 200 s a video, eu-west-1."""
    monthly = run_json(run_script, *BASE)["monthly_usd"]
    expected = {
        # 120 x 200 s x 1 GB + lister 30 x 10 pages x 1 s x 0.5 GB + summary 30 x 2 s x 0.25 GB + rotation
        # 4 x 3 s x 0.25 GB = 24,168 GB-s; 120 + 60 + 4 invocations.
        "Lambda": 24_168 * 0.0000133334 + 184 / 1e6 * 0.20,
        # 120 x 2.1 per video + 5 idle pollers x 4,320 long polls a day x 30 + 4 x 30 depth reads.
        "SQS": (252 + 648_000 + 120) / 1e6 * 0.40,
        # 840 write units, 15,000 read units, 0.002 GB stored.
        "DynamoDB": 840 / 1e6 * 0.7065 + 15_000 / 1e6 * 0.1413 + 0.002 * 0.283,
        # 4 a night x 7 days x 2 GB in Standard.
        "S3 Standard": 56 * 0.023,
        # 240 GB a month, each billed Glacier IR's 90-day minimum (3 months).
        "S3 Glacier Instant Retrieval": 240 * 3 * 0.004,
        "S3 Glacier Deep Archive": 2000 * 0.00099,
        # 2 GB / 8 MiB parts = 239 parts + create + complete, per video; one HEAD; two transitions.
        "S3 requests": 120 * 241 / 1000 * 0.005 + 120 / 1000 * 0.0004 + 120 / 1000 * (0.02 + 0.05),
        "KMS": 1.00 + (120 * 3 + 20_000) / 10_000 * 0.03,
        "Secrets Manager": 0.40 + (7 * 30 + 8) / 10_000 * 0.05,
        # metrics, 20 alarm metrics, a dashboard; 8.4 MB of logs kept a month; 180 traces.
        "CloudWatch": len(Metric) * 0.30 + 20 * 0.10 + 3.00 + 0.0084 * 0.57 + 0.0084 * 0.03 + 180 / 1e6 * 5.00,
    }
    assert set(monthly) == set(expected)
    for service, cost in expected.items():
        assert monthly[service] == pytest.approx(cost, abs=1e-4), service


def test_the_vpc_adds_the_nat_gateway_and_the_endpoints(run_script) -> None:
    plain = run_json(run_script, *BASE)["monthly_usd"]
    vpc = run_json(run_script, *BASE, "--vpc")["monthly_usd"]
    # 730 h of gateway and its public IPv4 address, 240 GB through it; 6 endpoints in 2 AZs.
    assert vpc["NAT gateway"] == pytest.approx(730 * (0.048 + 0.005) + 240 * 0.048, abs=1e-4)
    assert vpc["VPC interface endpoints"] == pytest.approx(6 * 2 * 730 * 0.011, abs=1e-4)
    assert "NAT gateway" not in plain
    # Flow logs: 240 GB x 20 KB of records.
    assert vpc["CloudWatch"] - plain["CloudWatch"] == pytest.approx(0.0048 * (0.57 + 0.03), abs=1e-4)


def test_capacity_says_whether_a_night_finishes(run_script) -> None:
    quick = run_json(run_script, *BASE)["capacity"]
    assert quick["seconds_per_video"] == 200.0
    assert quick["night_hours"] == pytest.approx(200 / 3600, abs=0.01)
    assert quick["finishes_before_next_run"] is True
    assert quick["backfill_days"] == pytest.approx(200 * 200 / 86_400, abs=0.01)
    slow = run_json(
        run_script, "--videos", "10", "--avg-gb", "4", "--new-per-night", "1000", "--mbps", "10", "--json"
    )
    # 3,200 s a video, 200 waves of 5: 177.8 hours.
    assert slow["capacity"]["night_hours"] == pytest.approx(177.78, abs=0.01)
    assert slow["capacity"]["finishes_before_next_run"] is False
    assert slow["capacity"]["invocations_per_video"] == 4


def test_text_output_names_every_service_and_the_verdict(run_script) -> None:
    result = run_script(estimate_cost, ["--videos", "100", "--avg-gb", "1", "--new-per-night", "2", "--vpc"])
    assert result.code == 0, result.err
    for service in (
        "Lambda",
        "SQS",
        "DynamoDB",
        "S3 Standard",
        "KMS",
        "Secrets Manager",
        "NAT gateway",
        "CloudWatch",
    ):
        assert service in result.out
    assert "finishes before the next run" in result.out


def test_an_unknown_region_is_one_line(run_script) -> None:
    result = run_script(estimate_cost, [*BASE, "--region", "mars-north-1"])
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "no prices for region 'mars-north-1'" in result.err


def test_the_price_table_is_dated_sourced_and_complete() -> None:
    table = json.loads(estimate_cost.PRICES_FILE.read_text())
    assert table["as_of"]
    assert table["source_note"]
    regions = table["regions"]
    shapes = {
        region: {service: set(prices) for service, prices in services.items()}
        for region, services in regions.items()
    }
    first = next(iter(shapes.values()))
    assert all(shape == first for shape in shapes.values())
    assert all("source" in prices for services in regions.values() for prices in services.values())


def test_the_mirrored_stack_shape_matches_infra_cdk() -> None:
    from infra_cdk import settings
    from infra_cdk.components.network import INTERFACE_ENDPOINTS

    assert estimate_cost.GLACIER_IR_AFTER_DAYS == settings.GLACIER_IR_AFTER_DAYS
    assert estimate_cost.DEEP_ARCHIVE_AFTER_DAYS == settings.DEEP_ARCHIVE_AFTER_DAYS
    assert len(INTERFACE_ENDPOINTS) == estimate_cost.INTERFACE_ENDPOINTS
    assert settings.settings_for("prod").nat_gateways == estimate_cost.NAT_GATEWAYS
