"""The way back, in the stack: S3's "Object Restore Completed" event of the archive bucket reaches the
`restore-completed` function, which sends one message on the alerts topic per restore request once all of it is
readable (`pipeline.services.restore_completed`).

Why through EventBridge rather than the bucket's own Lambda notification: a bucket notification needs CDK's
BucketNotifications custom resource (a Lambda of its own, with AWS managed policies) to break the cycle between the
bucket and a function whose environment names the bucket; EventBridge delivery is a plain property of the bucket
(`EventBridgeConfiguration`) and a rule that depends on both, with no cycle and no helper function.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.components.function import PipelineFunction
from infra_cdk.components.network import Network
from infra_cdk.components.storage import Storage
from infra_cdk.settings import EnvironmentSettings

HANDLER = "pipeline.handlers.restore_completed.handler"
DETAIL_TYPE = "Object Restore Completed"  # S3's EventBridge name of s3:ObjectRestore:Completed
# The restore ledger: an object's request, count it ready, claim (and after a failed publish release) the message.
TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


class RestoreNotifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: Storage,
        topic: sns.ITopic,
        key: kms.IKey,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        environment: Mapping[str, str],
        network: Network | None,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PipelineFunction(
            self,
            "RestoreCompleted",
            settings=settings,
            purpose="restore-completed",
            handler=HANDLER,
            description="Tells the alerts topic when a restore request from the archive is ready to fetch",
            sizing=settings.summary,  # a few table reads and one publish, like the report
            code=code,
            layer=layer,
            key=key,
            environment=environment,
            network=network,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=2,
        )
        role = self.function.role
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RestoreLedger", actions=list(TABLE_ACTIONS), resources=[storage.table.table_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="EnvironmentKey", actions=list(KEY_ACTIONS), resources=[key.key_arn])
        )
        role.add_to_policy(iam.PolicyStatement(sid="Notify", actions=["sns:Publish"], resources=[topic.topic_arn]))

        bucket = storage.archive_bucket
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        self.rule = events.Rule(
            self,
            "RestoreCompletedRule",
            description="S3 finished restoring an archived object: count it in its restore request",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=[DETAIL_TYPE],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [{"prefix": f"{settings.provider}/"}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.function.function, dead_letter_queue=dead_letter_queue, retry_attempts=2
                )
            ],
        )
