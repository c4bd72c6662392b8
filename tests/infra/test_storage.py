"""State table and archive bucket: key design, protection, encryption, lifecycle, access."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import Synthesized, arn_of

pytestmark = pytest.mark.infra

DAY = 24 * 3600


def _archive(env: Synthesized) -> tuple[str, dict]:
    [(lid, bucket)] = [(lid, r) for lid, r in env.resources_of("AWS::S3::Bucket").items() if "Archive" in lid]
    return lid, bucket


def _access_logs(env: Synthesized) -> tuple[str, dict]:
    [(lid, bucket)] = [(lid, r) for lid, r in env.resources_of("AWS::S3::Bucket").items() if "AccessLogs" in lid]
    return lid, bucket


def test_table_key_design_and_status_index(env: Synthesized) -> None:
    env.assertions.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": f"gopro-sync-tracker-{env.environment}",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "status-sync_timestamp-index",
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "sync_timestamp", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "AttributeDefinitions": Match.array_with(
                [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "status", "AttributeType": "S"},
                    {"AttributeName": "sync_timestamp", "AttributeType": "S"},
                ]
            ),
        },
    )


def test_table_is_deletion_protected_in_prod_only(env: Synthesized) -> None:
    _, table = env.one("AWS::DynamoDB::Table")
    protected = table["Properties"].get("DeletionProtectionEnabled", False)
    assert protected is (env.environment == "prod")
    if env.environment != "dev":
        assert table["DeletionPolicy"] == "Retain"


def test_archive_bucket_is_versioned_private_and_logged(env: Synthesized) -> None:
    _, bucket = _archive(env)
    logs_id, _ = _access_logs(env)
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
    assert bucket["DeletionPolicy"] == "Retain"


def test_archive_bucket_uses_the_customer_key_with_a_bucket_key(env: Synthesized) -> None:
    _, bucket = _archive(env)
    key_id, _ = env.one("AWS::KMS::Key")
    [rule] = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn_of(key_id)}
    assert rule["BucketKeyEnabled"] is True


def test_media_lifecycle_deep_archive_from_the_first_midnight_by_default(env: Synthesized) -> None:
    """Issue 13: no more Glacier IR at 7 days (billed its 90-day minimum for a 7-day stay)."""
    _, bucket = _archive(env)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    media = rules["media-deep-archive"]
    assert media["Status"] == "Enabled"
    assert media["Prefix"] == "gopro/"  # pipeline/keys.py: {provider}/{yyyy}/{mm}/{dd}/{media_id}/{filename}
    assert media["ObjectSizeGreaterThan"] == "131072"
    assert media["Transitions"] == [{"StorageClass": "DEEP_ARCHIVE", "TransitionInDays": 0}]
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] > 0
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0


def test_only_the_downloader_may_write_or_delete_archive_objects(env: Synthesized) -> None:
    bucket_id, _ = _archive(env)
    downloader_role = next(
        lid for lid in env.resources_of("AWS::IAM::Role") if lid.startswith("PipelineDownloaderRole")
    )
    env.assertions.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": Match.array_with(["s3:DeleteObject", "s3:PutObject"]),
                                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [arn_of(downloader_role)]}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_access_log_bucket_expires_logs(env: Synthesized) -> None:
    _, bucket = _access_logs(env)
    [rule] = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] > 0
    assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True


def _statements(env: Synthesized) -> dict[str, dict]:
    bucket_id, _ = _archive(env)
    [policy] = [
        r["Properties"]
        for r in env.resources_of("AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"] if "Sid" in s}


def _object_patterns(resources: list, bucket_id: str) -> set[str]:
    """`arn_for_objects` renders {Fn::Join: ["", [{GetAtt: [bucket, Arn]}, "/<pattern>"]]}."""
    patterns = set()
    for resource in resources:
        [joined] = resource.values()
        assert joined[1][0] == {"Fn::GetAtt": [bucket_id, "Arn"]}
        patterns.add(joined[1][1])
    return patterns


OPERATOR_OBJECTS = {"/catalog/*", "/gopro/*/_media.json"}


def test_media_stay_the_downloader_s_alone_the_catalog_and_sidecars_are_not_media(env: Synthesized) -> None:
    """Issue 14: `catalog --upload` and the sidecar back-fill are put by an operator; the videos stay protected."""
    bucket_id, _ = _archive(env)
    downloader_role = next(
        lid for lid in env.resources_of("AWS::IAM::Role") if lid.startswith("PipelineDownloaderRole")
    )
    statements = _statements(env)
    media = statements["OnlyThePipelineWritesTheArchive"]
    # Every object but the catalog and the sidecars (NotResource): a video is written by the downloader only.
    assert "Resource" not in media
    assert _object_patterns(media["NotResource"], bucket_id) == OPERATOR_OBJECTS
    assert media["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [arn_of(downloader_role)]}}
    assert {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(media["Action"])

    put_only = statements["OperatorObjectsArePutOnly"]
    assert (put_only["Effect"], put_only["Principal"]) == ("Deny", {"AWS": "*"})
    assert "Condition" not in put_only  # nobody deletes, tags or locks them, the downloader neither
    assert "s3:PutObject" not in put_only["Action"]
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention"} <= set(put_only["Action"])
    assert _object_patterns(put_only["Resource"], bucket_id) == OPERATOR_OBJECTS

    puts = statements["OnlyOperatorsPutTheCatalogAndSidecars"]
    assert (puts["Effect"], puts["Action"]) == ("Deny", "s3:PutObject")
    assert _object_patterns(puts["Resource"], bucket_id) == OPERATOR_OBJECTS
    allowed = puts["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert allowed[0] == arn_of(downloader_role)  # the downloader writes each medium's sidecar
    # No `archive.operators` in the examples but full: any IAM principal of this account.
    account_wide = {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":*"]]
    }
    assert allowed[1:] == [account_wide]


def test_configured_operators_replace_the_account_wide_default(synthesized: dict[str, Synthesized]) -> None:
    from infra_cdk import config_file

    full = synthesized["full"]
    puts = _statements(full)["OnlyOperatorsPutTheCatalogAndSidecars"]
    assert puts["Condition"]["ArnNotLike"]["aws:PrincipalArn"][1:] == list(
        config_file.load("full").archive_operators
    )


def test_the_stale_event_notification_skip_now_says_what_the_bucket_sends(env: Synthesized) -> None:
    _, bucket = _archive(env)
    skips = {s["id"]: s["comment"] for s in bucket["Metadata"]["checkov"]["skip"]}
    assert "EventBridge" in skips["CKV2_AWS_62"]
    assert bucket["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"]
