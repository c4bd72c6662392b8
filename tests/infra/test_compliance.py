"""Exceptions to cdk-nag and checkov carry reasons; the Lambda assets hold what they should and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra


def test_cdk_nag_found_nothing_unacknowledged(env: Synthesized) -> None:
    # Synthesis raises on an unacknowledged error; the report must also carry no warnings.
    report = json.loads((env.assembly_dir / "validation-report.json").read_text())
    assert report["pluginReports"] == []


def test_every_exception_has_a_written_reason(env: Synthesized) -> None:
    seen = 0
    for lid, resource in env.template["Resources"].items():
        metadata = resource.get("Metadata", {})
        for rule in metadata.get("cdk_nag", {}).get("rules_to_suppress", []):
            assert len(rule["reason"].split()) >= 8, f"{lid}: {rule}"
            seen += 1
        for skip in metadata.get("checkov", {}).get("skip", []):
            assert len(skip["comment"].split()) >= 8, f"{lid}: {skip}"
            seen += 1
    assert seen


def _asset_dirs(env: Synthesized) -> list[Path]:
    return [p for p in env.assembly_dir.iterdir() if p.name.startswith("asset.") and p.is_dir()]


def test_function_code_is_the_pipeline_package_alone(env: Synthesized) -> None:
    code = [p for p in _asset_dirs(env) if (p / "pipeline").is_dir()]
    assert len(code) == 1
    # The package, and the pyproject.toml holding only its version (`infra_cdk.bundling._write_version`).
    assert sorted(p.name for p in code[0].iterdir()) == ["pipeline", "pyproject.toml"]
    assert (code[0] / "pipeline" / "resources.py").is_file()
    assert not list(code[0].rglob("__pycache__"))
    assert not list(code[0].rglob("*.pyc"))


def test_dependency_layer_holds_aarch64_wheels(env: Synthesized) -> None:
    [layer] = [p for p in _asset_dirs(env) if (p / "python").is_dir()]
    site = layer / "python"
    for package in ("boto3", "botocore", "requests", "aws_xray_sdk", "pythonjsonlogger", "backoff", "awscrt"):
        assert (site / package).is_dir(), package
    wheel = next(site.glob("awscrt-*.dist-info")) / "WHEEL"
    assert "aarch64" in wheel.read_text()
