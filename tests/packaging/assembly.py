"""The synthesized cloud assembly, read as CloudFormation would deploy it; its resources made on a local endpoint.

Why from the template and not from `pipeline.resources`: the point is to run what would be deployed. Each
function's code asset, handler, runtime, memory, timeout and environment come from the template and the asset
manifest; the table, queues, topic, bucket and secret are created from their template properties. A value in a
function's environment that is a CloudFormation intrinsic is resolved through `LOCAL_RESOURCES` (what `Ref` and
`Fn::GetAtt` give for each resource type once it exists locally); any intrinsic not in that table fails the test,
so a new kind of reference is mapped on purpose, never passed through as a JSON blob.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.lambda_rie import FunctionSpec

ACCOUNT_ID = "123456789012"  # moto's default account


class UnmappedIntrinsic(AssertionError):
    """A template value the harness cannot turn into a local value (add it to LOCAL_RESOURCES on purpose)."""


@dataclass(frozen=True)
class LocalResource:
    ref: str  # what `Ref` gives
    attributes: dict[str, str] = field(default_factory=dict)  # what `Fn::GetAtt` gives


@dataclass(frozen=True)
class Assembly:
    directory: Path
    stack: str
    template: dict[str, Any]
    assets: dict[str, Any]  # the asset manifest's `files`

    @classmethod
    def load(cls, directory: Path, stack: str) -> Assembly:
        template = json.loads((directory / f"{stack}.template.json").read_text())
        assets = json.loads((directory / f"{stack}.assets.json").read_text())["files"]
        return cls(directory, stack, template, assets)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == resource_type}

    def function_id(self, function_name: str) -> str:
        found = [
            lid
            for lid, r in self.of_type("AWS::Lambda::Function").items()
            if r["Properties"].get("FunctionName") == function_name
        ]
        assert len(found) == 1, f"expected one function named {function_name}, found {found}"
        return found[0]

    def asset_dir(self, code: dict[str, Any]) -> Path:
        """The directory of a zip asset, found through the asset manifest from the S3 key the template names."""
        key = code["S3Key"]
        assert isinstance(key, str), f"not a file asset: {code}"
        assert key.endswith(".zip"), f"not a zip asset: {code}"
        source = self.assets[key.removesuffix(".zip")]["source"]
        assert source["packaging"] == "zip", source
        path = self.directory / source["path"]
        assert path.is_dir(), f"asset {path} missing: synthesize with bundling"
        return path

    def layer_dirs(self, function_id: str) -> list[Path]:
        """The layer assets of one function (each must hold `python/`, as Lambda expects at /opt/python)."""
        layers = self.resources[function_id]["Properties"].get("Layers", [])
        return [self.asset_dir(self.resources[layer["Ref"]]["Properties"]["Content"]) for layer in layers]

    def function_spec(self, function_name: str, local: LocalStackResources) -> FunctionSpec:
        lid = self.function_id(function_name)
        props = self.resources[lid]["Properties"]
        variables = props.get("Environment", {}).get("Variables", {})
        return FunctionSpec(
            name=function_name,
            handler=props["Handler"],
            runtime=props["Runtime"],
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_seconds=int(props.get("Timeout", 3)),
            code_dir=self.asset_dir(props["Code"]),
            environment={
                name: local.resolve(value, where=f"{function_name} {name}") for name, value in variables.items()
            },
        )

    def event_source(self, function_id: str) -> dict[str, Any]:
        found = [
            r["Properties"]
            for r in self.of_type("AWS::Lambda::EventSourceMapping").values()
            if r["Properties"].get("FunctionName") == {"Ref": function_id}
        ]
        assert len(found) == 1, f"expected one event source mapping for {function_id}"
        return found[0]

    def schedule_input(self, function_id: str) -> Any:
        """The event EventBridge Scheduler sends the function (its target's `Input`)."""
        for schedule in self.of_type("AWS::Scheduler::Schedule").values():
            target = schedule["Properties"]["Target"]
            if target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}:
                return json.loads(target.get("Input", "{}"))
        raise AssertionError(f"no schedule targets {function_id}")


# --- creating the template's resources locally -------------------------------------------------------------------
# KMS settings (KmsMasterKeyId, SSESpecification) are left out: the local endpoint encrypts nothing, and a key
# would only add an intrinsic to map. Everything that changes behaviour (keys, indexes, timeouts, redrive) is kept.


def _table(local: LocalStackResources, lid: str, props: dict[str, Any]) -> LocalResource:
    dynamodb = local.clients("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": props["TableName"],
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
            for index in props["GlobalSecondaryIndexes"]
        ]
    description = dynamodb.create_table(**kwargs)["TableDescription"]
    dynamodb.get_waiter("table_exists").wait(TableName=props["TableName"])
    return LocalResource(props["TableName"], {"Arn": description["TableArn"]})


def _queue(local: LocalStackResources, lid: str, props: dict[str, Any]) -> LocalResource:
    sqs = local.clients("sqs")
    attributes = {
        name: str(props[name])
        for name in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")
        if name in props
    }
    if "RedrivePolicy" in props:
        policy = props["RedrivePolicy"]
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": local.resolve(policy["deadLetterTargetArn"], where=f"{lid} RedrivePolicy"),
                "maxReceiveCount": str(policy["maxReceiveCount"]),
            }
        )
    url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return LocalResource(url, {"Arn": arn, "QueueName": props["QueueName"], "QueueUrl": url})


def _topic(local: LocalStackResources, lid: str, props: dict[str, Any]) -> LocalResource:
    arn = local.clients("sns").create_topic(Name=props["TopicName"])["TopicArn"]
    return LocalResource(arn, {"TopicArn": arn, "TopicName": props["TopicName"]})


def _bucket(local: LocalStackResources, lid: str, props: dict[str, Any]) -> LocalResource:
    # CloudFormation generates the name (stack name + logical id + suffix); so does this, lower-cased. It differs
    # from every default the code knows, so a function that ignores BUCKET_NAME cannot find the bucket.
    name = props.get("BucketName") or f"{local.stack}-{lid}".lower()[:63]
    s3 = local.clients("s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": local.region})
    if props.get("VersioningConfiguration"):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    return LocalResource(name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"})


def _secret(local: LocalStackResources, lid: str, props: dict[str, Any]) -> LocalResource:
    """The secret holds `local.secret_value` (the simulator's credentials), as scripts/bootstrap_credentials.py
    would have left it, instead of the template's generated placeholder."""
    answer = local.clients("secretsmanager").create_secret(Name=props["Name"], SecretString=local.secret_value)
    return LocalResource(answer["ARN"], {"Id": answer["ARN"]})


# Resource type -> how it is created locally; the LocalResource it answers is what Ref / GetAtt resolve to.
LOCAL_RESOURCES: dict[str, Callable[[LocalStackResources, str, dict[str, Any]], LocalResource]] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::SQS::Queue": _queue,
    "AWS::SNS::Topic": _topic,
    "AWS::S3::Bucket": _bucket,
    "AWS::SecretsManager::Secret": _secret,
}


class LocalStackResources:
    """The template's resources on a local AWS endpoint, created on first reference."""

    def __init__(self, assembly: Assembly, clients: Callable[..., Any], *, region: str, secret_value: str) -> None:
        self.assembly = assembly
        self.stack = assembly.stack
        self.clients = clients
        self.region = region
        self.secret_value = secret_value
        self.created: dict[str, LocalResource] = {}
        self._pseudo = {"AWS::Region": region, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws"}

    def provision(self, lid: str) -> LocalResource:
        if lid not in self.created:
            resource = self.assembly.resources.get(lid)
            if resource is None or resource["Type"] not in LOCAL_RESOURCES:
                kind = resource["Type"] if resource else "no such resource"
                raise UnmappedIntrinsic(f"{lid} ({kind}) has no local counterpart in LOCAL_RESOURCES")
            self.created[lid] = LOCAL_RESOURCES[resource["Type"]](self, lid, resource.get("Properties", {}))
        return self.created[lid]

    def provision_all(self, resource_type: str) -> list[LocalResource]:
        return [self.provision(lid) for lid in self.assembly.of_type(resource_type)]

    def resolve(self, value: Any, *, where: str) -> str:
        """A literal, `Ref` or `Fn::GetAtt` as a local value; anything else fails."""
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((intrinsic, argument),) = value.items()
            if intrinsic == "Ref" and argument in self._pseudo:
                return self._pseudo[argument]
            if intrinsic == "Ref" and isinstance(argument, str):
                return self.provision(argument).ref
            if intrinsic == "Fn::GetAtt" and isinstance(argument, list) and len(argument) == 2:
                attributes = self.provision(argument[0]).attributes
                if argument[1] in attributes:
                    return attributes[argument[1]]
        raise UnmappedIntrinsic(f"{where}: cannot map {json.dumps(value)} to a local value")
