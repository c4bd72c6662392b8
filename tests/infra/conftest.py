"""Synthesizes every example configuration once per test session and shares the templates.

`config/examples/`: personal (the documented default), dev, staging, prod (the presets for a pipeline run for
others) and full (every field of the configuration file set to a non-default value). Tests that take `env` run
once per dev/staging/prod preset; `synthesized["personal"]` and `synthesized["full"]` are read directly.

Why once: a synthesis costs a few seconds of jsii round trips; the assertion modules only read the result. The
synthesis is the real one (`infra_cdk.synth`, with asset bundling and cdk-nag), so a test run also proves that
`make synth` would succeed: an unacknowledged cdk-nag finding fails here as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from pipeline import resources

EXAMPLES = ("personal", "dev", "staging", "prod", "full")


@dataclass(frozen=True)
class Synthesized:
    name: str  # the example configuration (config/examples/<name>.json)
    environment: str
    template: dict[str, Any]
    assembly_dir: Path

    @cached_property
    def assertions(self) -> Template:
        """The template as `aws_cdk.assertions.Template`, for `has_resource_properties` and `Match`."""
        return Template.from_json(self.template)

    def resources_of(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.template["Resources"].items() if r["Type"] == resource_type}

    def one(self, resource_type: str, **where: Any) -> tuple[str, dict[str, Any]]:
        """The single resource of `resource_type` whose properties match `where` (top-level equality)."""
        found = [
            (lid, r)
            for lid, r in self.resources_of(resource_type).items()
            if all(r.get("Properties", {}).get(k) == v for k, v in where.items())
        ]
        assert len(found) == 1, f"expected one {resource_type} with {where}, found {[lid for lid, _ in found]}"
        return found[0]

    def function(self, purpose: str) -> tuple[str, dict[str, Any]]:
        return self.one("AWS::Lambda::Function", FunctionName=f"gopro-sync-{purpose}-{self.environment}")

    def queue(self, name: str) -> tuple[str, dict[str, Any]]:
        return self.one("AWS::SQS::Queue", QueueName=name)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    from infra_cdk import config_file
    from infra_cdk.synth import synth

    outdir = tmp_path_factory.mktemp("cdk.out")
    result = {}
    for name in EXAMPLES:
        template_path = synth(name, outdir)
        environment = config_file.load(name).environment
        result[name] = Synthesized(name, environment, json.loads(template_path.read_text()), template_path.parent)
    return result


@pytest.fixture(params=resources.ENVIRONMENTS)
def env(request: pytest.FixtureRequest, synthesized: dict[str, Synthesized]) -> Synthesized:
    """Each test that takes `env` runs once per dev/staging/prod preset (config/examples/<env>.json)."""
    return synthesized[request.param]


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}
