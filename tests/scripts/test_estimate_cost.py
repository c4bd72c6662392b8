"""scripts/estimate_cost.py: its figures against a hand computation, the capacity verdict, the price table."""

from __future__ import annotations

import json

import pytest

from pipeline.observability.metrics import Metric
from scripts import _estimate_cost as estimate_cost

BASE = ["--videos", "1000", "--avg-gb", "2", "--new-per-night", "4", "--mbps", "80", "--json"]
# The documented examples (README.md "Costs", docs/deployment.md): the personal preset, eu-west-1, 100 Mbit/s.
EXAMPLE_A = ["--videos", "2000", "--avg-gb", "4", "--new-per-night", "5", "--config", "personal", "--json"]
EXAMPLE_B = [
    *("--videos", "500", "--avg-gb", "2", "--new-per-night", "1", "--config", "personal"),
    *("--region", "us-east-1", "--json"),
]


def run_json(run_script, *argv: str) -> dict:
    result = run_script(estimate_cost, list(argv))
    assert result.code == 0, result.err
    return json.loads(result.out)


def _check(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for service, cost in expected.items():
        assert actual[service] == pytest.approx(cost, abs=1e-4), service


def test_example_a_steady_month_matches_a_hand_computation(run_script) -> None:
    """2,000 videos of 4 GB, 5 new a night (150 a month, 600 GB), 100 Mbit/s: 320 s a video; personal preset."""
    answer = run_json(run_script, *EXAMPLE_A)
    expected = {
        # 150 x 320 s x 0.5 GB (512 MB) + lister 30 x 20 pages x 1 s x 0.5 GB + summary 30 x 2 s x 0.25 GB +
        # rotation 4 x 3 s x 0.25 GB = 24,318 GB-s; 150 + 60 + 4 invocations.
        "Lambda": 24_318 * 0.0000133334 + 214 / 1e6 * 0.20,
        # 150 x 2.1 per video + 5 idle pollers x 4,320 long polls a day x 30 + 4 x 30 depth reads.
        "SQS": (315 + 648_000 + 120) / 1e6 * 0.40,
        # 1,050 write units, 30,000 read units (the nightly listing), 0.004 GB stored.
        "DynamoDB": 1_050 / 1e6 * 0.7065 + 30_000 / 1e6 * 0.1413 + 0.004 * 0.283,
        # Each night's 20 GB wait in Standard for the first midnight UTC (priced as a whole day): 600 GB-days.
        "S3 Standard": 600 * 1 / 30 * 0.023,
        "S3 Glacier Deep Archive": 8_000 * 0.00099,
        # 4 GB / 8 MiB = 477 parts + create + complete, per video; one HEAD; one transition.
        "S3 requests": 150 * 479 / 1000 * 0.005 + 150 / 1000 * 0.0004 + 150 / 1000 * 0.05,
        "KMS": 1.00 + (20_000 + 150 * 3) / 10_000 * 0.03,
        # lister + summary + 5 downloader containers a night, 4 rotation invocations x 2.
        "Secrets Manager": 0.40 + (7 * 30 + 8) / 10_000 * 0.05,
        # 7 nightly metrics metered 1 hour a night (30 of 730 hours); 8 alarm metrics (5 essential alarms, the
        # drain detector's 3); 9 MB of logs kept a month; 214 traces. No dashboard.
        "CloudWatch": 30 / 730 * 7 * 0.30 + 8 * 0.10 + 0.009 * 0.57 + 0.009 * 0.03 + 214 / 1e6 * 5.00,
    }
    _check(answer["monthly_usd"], expected)
    assert answer["total_usd"] == pytest.approx(11.69, abs=0.005)
    # Issue 13: at most 1.5x the Deep Archive storage of the same bytes (7.92 USD).
    assert answer["total_usd"] <= 1.5 * 8_000 * 0.00099
    assert answer["capacity"]["total_over_floor"] == pytest.approx(answer["total_usd"] / 7.92, abs=1e-3)


def test_example_a_first_backfill_matches_a_hand_computation(run_script) -> None:
    answer = run_json(run_script, *EXAMPLE_A)
    expected = {
        "Lambda": 2_000 * 320 * 0.5 * 0.0000133334 + 2_000 / 1e6 * 0.20,
        "SQS": 2_000 * 2.1 / 1e6 * 0.40,
        "DynamoDB": 2_000 * 7 / 1e6 * 0.7065,
        # 8,000 GB a day in Standard before Deep Archive.
        "S3 Standard": 8_000 / 30 * 0.023,
        "S3 requests": 2_000 * 479 / 1000 * 0.005 + 2_000 / 1000 * 0.0004 + 2_000 / 1000 * 0.05,
        "KMS": 2_000 * 3 / 10_000 * 0.03,
        "CloudWatch": 0.04 * 0.57 + 0.04 * 0.03 + 2_000 / 1e6 * 5.00,
    }
    _check(answer["backfill_usd"], expected)
    assert answer["backfill_total_usd"] == pytest.approx(15.35, abs=0.005)
    # 400 waves of 5 videos, 320 s each.
    assert answer["capacity"]["backfill_days"] == pytest.approx(400 * 320 / 86_400, abs=0.01)


def test_example_a_with_the_vpc(run_script) -> None:
    plain = run_json(run_script, *EXAMPLE_A)
    vpc = run_json(run_script, *EXAMPLE_A, "--vpc")
    # 730 h of gateway and its public IPv4 address, 600 GB through it; 6 endpoints in 2 AZs.
    assert vpc["monthly_usd"]["NAT gateway"] == pytest.approx(730 * (0.048 + 0.005) + 600 * 0.048, abs=1e-4)
    assert vpc["monthly_usd"]["VPC interface endpoints"] == pytest.approx(6 * 2 * 730 * 0.011, abs=1e-4)
    assert "NAT gateway" not in plain["monthly_usd"]
    # Flow logs: 600 GB x 20 KB of records.
    cloudwatch = vpc["monthly_usd"]["CloudWatch"] - plain["monthly_usd"]["CloudWatch"]
    assert cloudwatch == pytest.approx(0.012 * (0.57 + 0.03), abs=1e-4)
    assert vpc["total_usd"] == pytest.approx(175.55, abs=0.005)
    # The backfill's 8,000 GB all pass the NAT gateway.
    assert vpc["backfill_usd"]["NAT gateway"] == pytest.approx(8_000 * 0.048, abs=1e-4)
    assert vpc["backfill_total_usd"] == pytest.approx(399.45, abs=0.005)


def test_example_b_small_library_in_us_east_1(run_script) -> None:
    """500 videos of 2 GB, 1 new a night, us-east-1: the running costs dominate a 1 TB library."""
    answer = run_json(run_script, *EXAMPLE_B)
    monthly = answer["monthly_usd"]
    assert monthly["S3 Glacier Deep Archive"] == pytest.approx(1_000 * 0.00099, abs=1e-4)
    assert monthly["S3 Standard"] == pytest.approx(60 / 30 * 0.023, abs=1e-4)
    # 30 x 160 s x 0.5 GB + lister 30 x 5 pages x 0.5 + summary 15 + rotation 3 = 2,493 GB-s; 94 invocations.
    assert monthly["Lambda"] == pytest.approx(2_493 * 0.0000133334 + 94 / 1e6 * 0.20, abs=1e-4)
    assert monthly["DynamoDB"] == pytest.approx(210 / 1e6 * 0.625 + 7_500 / 1e6 * 0.125 + 0.001 * 0.25, abs=1e-4)
    # 2 GB / 8 MiB = 239 parts + 2.
    assert monthly["S3 requests"] == pytest.approx(30 * 241 / 1000 * 0.005 + 30 / 1000 * (0.0004 + 0.05), abs=1e-4)
    assert answer["total_usd"] == pytest.approx(3.72, abs=0.005)
    assert answer["backfill_total_usd"] == pytest.approx(1.94, abs=0.005)
    vpc = run_json(run_script, *EXAMPLE_B, "--vpc")
    assert vpc["monthly_usd"]["NAT gateway"] == pytest.approx(730 * (0.045 + 0.005) + 60 * 0.045, abs=1e-4)
    assert vpc["monthly_usd"]["VPC interface endpoints"] == pytest.approx(6 * 2 * 730 * 0.01, abs=1e-4)
    assert vpc["total_usd"] == pytest.approx(130.52, abs=0.005)
    assert vpc["backfill_total_usd"] == pytest.approx(46.95, abs=0.005)


def test_the_estimate_follows_the_configuration(run_script) -> None:
    """prod: 1024 MB downloader, dashboard, all 27 alarm metrics, VPC; the same library as example A."""
    prod = run_json(run_script, *EXAMPLE_A[:-3], "--config", "prod", "--json")
    assert prod["inputs"]["downloader_memory_mb"] == 1024
    assert prod["inputs"]["vpc"] is True
    assert prod["inputs"]["alarm_metrics"] == 27
    assert prod["inputs"]["dashboard"] is True
    personal = run_json(run_script, *EXAMPLE_A, "--vpc")
    assert prod["monthly_usd"]["CloudWatch"] - personal["monthly_usd"]["CloudWatch"] == pytest.approx(
        3.00 + 19 * 0.10, abs=1e-4
    )
    assert prod["monthly_usd"]["Lambda"] == pytest.approx(48_318 * 0.0000133334 + 214 / 1e6 * 0.20, abs=1e-4)


def test_glacier_ir_presets_bill_their_minimum(run_script, tmp_path) -> None:
    config = tmp_path / "ir.json"
    config.write_text(json.dumps({"lifecycle": "glacier-ir-then-deep-archive"}))
    answer = run_json(run_script, *EXAMPLE_A[:-3], "--config", str(config), "--json")
    # 600 GB a month, each billed 90 days of Glacier IR before Deep Archive; the library in Deep Archive.
    assert answer["monthly_usd"]["S3 Glacier Instant Retrieval"] == pytest.approx(600 * 3 * 0.004, abs=1e-4)
    assert answer["monthly_usd"]["S3 Glacier Deep Archive"] == pytest.approx(7.92, abs=1e-4)
    assert answer["backfill_usd"]["S3 Glacier Instant Retrieval"] == pytest.approx(8_000 * 3 * 0.004, abs=1e-4)
    instant = tmp_path / "instant.json"
    instant.write_text(json.dumps({"lifecycle": "glacier-instant-retrieval"}))
    answer = run_json(run_script, *EXAMPLE_A[:-3], "--config", str(instant), "--json")
    assert answer["monthly_usd"]["S3 Glacier Instant Retrieval"] == pytest.approx(8_000 * 0.004, abs=1e-4)
    assert "S3 Glacier Deep Archive" not in answer["monthly_usd"]


def test_a_bad_configuration_is_one_line(run_script, tmp_path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"lifecycle": "glacier"}))
    result = run_script(estimate_cost, [*BASE, "--config", str(config)])
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "lifecycle: expected one of" in result.err


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
    # The regions a European or American user is likely to pick, each named.
    assert {"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1"} <= set(regions)
    assert {"us-east-1", "us-east-2", "us-west-2", "ca-central-1"} <= set(regions)
    assert set(table["region_names"]) == set(regions)
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

    assert len(INTERFACE_ENDPOINTS) == estimate_cost.INTERFACE_ENDPOINTS
    assert settings.PRESETS["prod"].nat_gateways == estimate_cost.NAT_GATEWAYS
    # The alarm count is checked against the synthesized templates in tests/infra/test_config_file.py.


def test_the_nightly_metrics_are_pipeline_metrics() -> None:
    assert set(estimate_cost.NIGHTLY_METRICS) <= set(Metric)
    assert len(set(estimate_cost.NIGHTLY_METRICS)) == len(estimate_cost.NIGHTLY_METRICS)


def test_the_docs_quote_the_estimators_figures(run_script) -> None:
    """README.md and docs/deployment.md quote the documented examples; they must be what the script says."""
    root = estimate_cost.PRICES_FILE.parents[1]
    deployment = (root / "docs" / "deployment.md").read_text()
    readme = (root / "README.md").read_text()
    for example in (EXAMPLE_A, EXAMPLE_B):
        plain = run_json(run_script, *example)
        vpc = run_json(run_script, *example, "--vpc")
        for figure in (plain["total_usd"], plain["backfill_total_usd"], vpc["total_usd"]):
            quoted = f"{figure:.2f} USD"
            assert quoted in deployment, quoted
            assert quoted in readme, quoted
        assert f"{vpc['backfill_total_usd']:.2f} USD" in deployment
