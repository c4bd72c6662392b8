"""State table, archive bucket and its access-log bucket.

Why these settings:
- The table's key design comes from `pipeline.resources` (the local stack creates the very same table);
  on-demand billing fits a nightly burst followed by nothing; point-in-time recovery because the table is the
  only record of what was archived and with which checksum.
- The archive bucket holds the only copy the user controls of their media: versioned (an overwrite or delete is
  recoverable until noncurrent versions expire), encrypted under the environment's key with an S3 bucket key (one
  KMS call per object instead of per part), TLS only, public access blocked, ACLs disabled, and writes/deletes
  refused to every principal but the downloader (`restrict_writes_to`), except two kinds of small objects an
  operator writes: the catalog page (`catalog/`) and the media's sidecars (`<provider>/**/_media.json`, the
  back-fill), which only the operators may put and nobody may delete. Media (under `<provider>/`, see
  pipeline/keys.py) follow the configuration's lifecycle preset (`infra_cdk.lifecycle`; Deep Archive from the
  first midnight UTC by default).
- Server access logs go to a separate bucket (SSE-S3: S3 log delivery cannot write SSE-KMS objects).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra_cdk import compliance
from infra_cdk.lifecycle import DEEP_ARCHIVE, GLACIER_IR, lifecycle
from infra_cdk.settings import ABORT_INCOMPLETE_UPLOAD_DAYS, LIFECYCLE_MIN_OBJECT_BYTES, EnvironmentSettings
from pipeline import resources

STORAGE_CLASSES = {
    GLACIER_IR: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
    DEEP_ARCHIVE: s3.StorageClass.DEEP_ARCHIVE,
}

# The objects an operator writes beside the media: the catalog page (scripts/catalog.py --upload) and the media's
# sidecars (scripts/backfill_sidecars.py; pipeline.services.sidecar). No medium's file is named `_media.json`
# (`pipeline.keys.safe_filename` never starts a name with `_`), so the pattern matches sidecars only.
CATALOG_PREFIX = "catalog/"
SIDECAR_NAME = "_media.json"
# Object writes and deletions only the downloader may perform on the archive.
ARCHIVE_WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:AbortMultipartUpload",
)


class Storage(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings

        self.table = dynamodb.Table(
            self,
            "StateTable",
            table_name=settings.names.table,
            partition_key=dynamodb.Attribute(
                name=resources.TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            deletion_protection=settings.table_deletion_protection,
            removal_policy=RemovalPolicy.RETAIN if settings.retain_state else RemovalPolicy.DESTROY,
        )
        self.table.add_global_secondary_index(
            index_name=resources.STATUS_INDEX_NAME,
            partition_key=dynamodb.Attribute(
                name=resources.STATUS_INDEX_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=resources.STATUS_INDEX_SORT_KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(settings.access_log_retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        compliance.acknowledge(
            self.access_logs_bucket,
            "S1",
            "This is the server access log bucket of the archive; logging it into itself would loop and a "
            "third bucket would only move the problem.",
        )
        compliance.skip_checkov(
            self.access_logs_bucket,
            "CKV_AWS_18",
            "This is the access-log target bucket itself; S3 cannot log a bucket into itself without looping.",
        )
        compliance.skip_checkov(
            self.access_logs_bucket,
            "CKV_AWS_145",
            "S3 server access log delivery only supports SSE-S3 on the target bucket, not SSE-KMS.",
        )

        self.archive_bucket = s3.Bucket(
            self,
            "ArchiveBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="archive/",
            lifecycle_rules=self._archive_lifecycle(),
            removal_policy=RemovalPolicy.RETAIN,
        )
        if lifecycle(settings.lifecycle).transitions:
            # The CloudFormation schema types ObjectSizeGreaterThan as a string; the L2 renders a number.
            archive = self.archive_bucket.node.default_child
            assert isinstance(archive, s3.CfnBucket)
            archive.add_property_override(
                "LifecycleConfiguration.Rules.0.ObjectSizeGreaterThan", str(LIFECYCLE_MIN_OBJECT_BYTES)
            )

        for bucket in (self.access_logs_bucket, self.archive_bucket):
            compliance.skip_checkov(
                bucket,
                "CKV_AWS_144",
                "Cross-region replication would double the storage bill of a personal archive; Deep Archive "
                "already stores objects redundantly across at least three availability zones.",
            )
            compliance.skip_checkov(
                bucket,
                "CKV2_AWS_62",
                "No event notification consumes object-created events (the state table records every upload); "
                "the archive bucket sends its events to EventBridge (EventBridgeConfiguration), where a rule "
                "takes only S3's Object Restore Completed events (components/restores.py), a configuration "
                "checkov does not read as a notification.",
            )

    def _archive_lifecycle(self) -> list[s3.LifecycleRule]:
        settings = self._settings
        policy = lifecycle(settings.lifecycle)
        media: list[s3.LifecycleRule] = []
        if policy.transitions:
            media.append(
                s3.LifecycleRule(
                    id=f"media-{policy.name}",
                    prefix=f"{settings.provider}/",
                    object_size_greater_than=LIFECYCLE_MIN_OBJECT_BYTES,
                    transitions=[
                        s3.Transition(
                            storage_class=STORAGE_CLASSES[step.storage_class],
                            transition_after=Duration.days(step.after_days),
                        )
                        for step in policy.transitions
                    ],
                )
            )
        return [
            *media,
            s3.LifecycleRule(
                id="abort-incomplete-multipart-uploads",
                abort_incomplete_multipart_upload_after=Duration.days(ABORT_INCOMPLETE_UPLOAD_DAYS),
            ),
            s3.LifecycleRule(
                id="expire-noncurrent-versions",
                noncurrent_version_expiration=Duration.days(settings.noncurrent_version_expiry_days),
                expired_object_delete_marker=True,
            ),
        ]

    def operator_objects(self) -> list[str]:
        """ARNs of the objects an operator may put: the catalog prefix and every sidecar of the media."""
        bucket = self.archive_bucket
        return [
            bucket.arn_for_objects(f"{CATALOG_PREFIX}*"),
            bucket.arn_for_objects(f"{self._settings.provider}/*/{SIDECAR_NAME}"),
        ]

    def restrict_writes_to(self, writers: Sequence[iam.IRole], *, operators: Sequence[str] = ()) -> None:
        """Denies object writes and deletions to every principal that is not one of `writers`, except puts of
        the catalog page and of sidecars by an operator.

        Why a deny in the bucket policy rather than only scoped IAM grants: other roles in the account (admin
        tools, other apps with `s3:*`) would otherwise be able to overwrite or delete the archive. An
        administrator who really must delete objects edits these statements first, deliberately.

        Three statements, because the media and the operator's objects need different rules:
        - `OnlyThePipelineWritesTheArchive`: every object but the operator's (NotResource) is written and deleted
          by the writers only: the videos stay protected as before;
        - `OperatorObjectsArePutOnly`: the catalog and the sidecars are never deleted, tagged or locked by
          anyone (a sidecar replaced by mistake is still there as a noncurrent version);
        - `OnlyOperatorsPutTheCatalogAndSidecars`: they are put only by the writers (the downloader writes each
          medium's sidecar) and by `operators`: the IAM principal ARNs of the configuration's
          `archive.operators` (wildcards allowed, as in `ArnLike`), or, when it names none, any IAM principal of
          this account (which still needs `s3:PutObject` in its own policy).
        """
        bucket = self.archive_bucket
        writer_arns = [role.role_arn for role in writers]
        operator_objects = self.operator_objects()
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThePipelineWritesTheArchive",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(ARCHIVE_WRITE_ACTIONS),
                not_resources=operator_objects,
                conditions={"ArnNotEquals": {"aws:PrincipalArn": writer_arns}},
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OperatorObjectsArePutOnly",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=[action for action in ARCHIVE_WRITE_ACTIONS if action != "s3:PutObject"],
                resources=operator_objects,
            )
        )
        allowed = list(operators) or [f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:*"]
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyOperatorsPutTheCatalogAndSidecars",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=operator_objects,
                conditions={"ArnNotLike": {"aws:PrincipalArn": [*writer_arns, *allowed]}},
            )
        )
