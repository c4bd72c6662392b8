"""Encryption everywhere, TLS only, least privilege, and the optional VPC."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synthesized, arn_of

pytestmark = pytest.mark.infra

# Actions that have no resource-level permissions in IAM: for these (and only these) Resource "*" is the only
# possible value. Source: the Service Authorization Reference of each service.
ACTIONS_WITHOUT_RESOURCE_LEVEL = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "secretsmanager:GetRandomPassword",
    "cloudwatch:PutMetricData",
}


def _identity_statements(env: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    """Every Allow statement of every identity policy (IAM policies and roles' inline policies)."""
    statements = []
    for lid, policy in env.resources_of("AWS::IAM::Policy").items():
        statements += [(lid, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    for lid, role in env.resources_of("AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            statements += [(lid, s) for s in inline["PolicyDocument"]["Statement"]]
    return [(lid, s) for lid, s in statements if s["Effect"] == "Allow"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_resource_where_the_action_supports_a_resource(env: Synthesized) -> None:
    statements = _identity_statements(env)
    assert statements
    for lid, statement in statements:
        if "*" in _as_list(statement["Resource"]):
            actions = set(_as_list(statement["Action"]))
            assert actions <= ACTIONS_WITHOUT_RESOURCE_LEVEL, f"{lid}: {sorted(actions)} on Resource '*'"


def test_no_wildcard_actions(env: Synthesized) -> None:
    for lid, statement in _identity_statements(env):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{lid}: {action}"


def test_every_function_has_its_own_role(env: Synthesized) -> None:
    roles = [
        fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in env.resources_of("AWS::Lambda::Function").values()
    ]
    assert len(roles) == len(set(roles))


def test_key_rotates_and_is_kept(env: Synthesized) -> None:
    _, key = env.one("AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_encryption_everywhere(env: Synthesized) -> None:
    key_id, _ = env.one("AWS::KMS::Key")
    key_arn = arn_of(key_id)
    for lid, queue in env.resources_of("AWS::SQS::Queue").items():
        assert queue["Properties"]["KmsMasterKeyId"] == key_arn, lid
    _, topic = env.one("AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == key_arn
    _, table = env.one("AWS::DynamoDB::Table")
    assert table["Properties"]["SSESpecification"] == {
        "KMSMasterKeyId": key_arn,
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    _, secret = env.one("AWS::SecretsManager::Secret")
    assert secret["Properties"]["KmsKeyId"] == key_arn
    for lid, group in env.resources_of("AWS::Logs::LogGroup").items():
        assert group["Properties"]["KmsKeyId"] == key_arn, lid
    for lid, bucket in env.resources_of("AWS::S3::Bucket").items():
        [rule] = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"aws:kms", "AES256"}, lid
    for lid, fn in env.resources_of("AWS::Lambda::Function").items():
        if lid.startswith("Pipeline"):
            assert fn["Properties"]["KmsKeyArn"] == key_arn, lid
    _, schedule = env.one("AWS::Scheduler::Schedule")
    assert schedule["Properties"]["KmsKeyArn"] == key_arn


def _denies_insecure_transport(policy_document: dict[str, Any]) -> bool:
    return any(
        s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in policy_document["Statement"]
    )


def test_tls_only_for_buckets_queues_and_topic(env: Synthesized) -> None:
    buckets = {p["Properties"]["Bucket"]["Ref"] for p in env.resources_of("AWS::S3::BucketPolicy").values()}
    assert buckets == set(env.resources_of("AWS::S3::Bucket"))
    for lid, policy in env.resources_of("AWS::S3::BucketPolicy").items():
        assert _denies_insecure_transport(policy["Properties"]["PolicyDocument"]), lid
    queues = set()
    for lid, policy in env.resources_of("AWS::SQS::QueuePolicy").items():
        assert _denies_insecure_transport(policy["Properties"]["PolicyDocument"]), lid
        queues |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert queues == set(env.resources_of("AWS::SQS::Queue"))
    [topic_policy] = env.resources_of("AWS::SNS::TopicPolicy").values()
    assert _denies_insecure_transport(topic_policy["Properties"]["PolicyDocument"])


def test_cloudwatch_may_publish_alarms_to_the_encrypted_topic(env: Synthesized) -> None:
    _, key = env.one("AWS::KMS::Key")
    principals = [s.get("Principal", {}).get("Service") for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert "cloudwatch.amazonaws.com" in principals


def test_vpc_only_where_enabled(env: Synthesized) -> None:
    vpcs = env.resources_of("AWS::EC2::VPC")
    functions = {
        lid: fn for lid, fn in env.resources_of("AWS::Lambda::Function").items() if lid.startswith("Pipeline")
    }
    if env.environment != "prod":
        assert not vpcs
        assert all("VpcConfig" not in fn["Properties"] for fn in functions.values())
        return
    assert len(vpcs) == 1
    public = [s for s in env.resources_of("AWS::EC2::Subnet").values() if s["Properties"]["MapPublicIpOnLaunch"]]
    assert not public
    assert len(env.resources_of("AWS::EC2::Subnet")) == 4  # 2 AZs x (public for NAT, private for functions)
    assert env.resources_of("AWS::EC2::NatGateway")
    assert env.resources_of("AWS::EC2::FlowLog")
    endpoints = env.resources_of("AWS::EC2::VPCEndpoint").values()
    gateway = [e for e in endpoints if e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"]
    interface = [e for e in endpoints if e["Properties"].get("VpcEndpointType") == "Interface"]
    assert len(gateway) == 2  # S3, DynamoDB
    services = {
        e["Properties"]["ServiceName"]
        if isinstance(e["Properties"]["ServiceName"], str)
        else str(e["Properties"]["ServiceName"])
        for e in interface
    }
    for name in ("secretsmanager", "logs", "sqs", "sns", "monitoring", "xray"):
        assert any(f".{name}" in s for s in services), name
    for lid, fn in functions.items():
        assert fn["Properties"]["VpcConfig"]["SubnetIds"], lid
