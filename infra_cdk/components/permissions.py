"""What the pipeline's functions may do, and what they are told: their IAM statements and their environment.

Permissions are written out statement by statement instead of CDK's `grant*` helpers, which add wildcard KMS
actions (`kms:GenerateDataKey*`, `kms:ReEncrypt*`) nobody here needs. `tests/infra/test_pipeline.py` lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns

from infra_cdk import compliance
from infra_cdk.components.function import PipelineFunction
from infra_cdk.components.queues import PipelineQueues
from infra_cdk.components.storage import Storage
from infra_cdk.settings import EnvironmentSettings
from pipeline import resources
from pipeline.config import EnvVar
from pipeline.providers.gopro.config import GoProEnv

if TYPE_CHECKING:
    from infra_cdk.components.pipeline import Pipeline

# DynamoDB actions per function. The credentials refresh lock (pipeline/credentials/lock.py) is a conditional
# Put/Delete on the state table, so every function that may refresh tokens needs both.
TABLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "lister": (
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
    ),
    "downloader": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
    # The summary reads the unreported runs (GetItem; a scan over run records for an operator's "latest"), lists
    # FAILED media and sums the archive through the status index, looks up the media a run found held by another
    # run's worker (BatchGetItem) and claims each report with a conditional update.
    "summary": (
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
    ),
    "rotation": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"),
}
# The customer managed key, for the table, queues, secret, topic and bucket this function touches. No wildcards.
KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")


def function_environment(
    settings: EnvironmentSettings, storage: Storage, topic: sns.ITopic, queues: PipelineQueues
) -> dict[str, str]:
    environment = {
        EnvVar.ENVIRONMENT: settings.environment,
        EnvVar.PROVIDER: settings.provider,
        EnvVar.TABLE_NAME: storage.table.table_name,
        EnvVar.BUCKET_NAME: storage.archive_bucket.bucket_name,
        EnvVar.QUEUE_URL: queues.queue.queue_url,
        EnvVar.DLQ_URL: queues.dead_letter_queue.queue_url,
        EnvVar.TOPIC_ARN: topic.topic_arn,
        # The name, not `secret.secret_name`: CloudFormation would have to cut it out of the ARN (and the
        # cut breaks on names with hyphens); the name is fixed by `pipeline.resources` anyway.
        EnvVar.CREDENTIALS_SECRET_ID: settings.names.credentials_secret,
        EnvVar.METRICS_NAMESPACE: settings.names.metrics_namespace,
        EnvVar.TRACING_ENABLED: "true",
        EnvVar.LOG_LEVEL: settings.log_level,
        # What to archive and how often to reconcile: the configuration file's choices, set explicitly so the
        # template shows what the functions run with (pipeline/config.py reads them).
        EnvVar.INCLUDE_PHOTOS: _flag(settings.include_photos),
        EnvVar.FULL_RECONCILE_DAYS: str(settings.full_reconcile_days),
        EnvVar.REPORT_QUIET_NIGHTS: _flag(settings.report_quiet_nights),
        # Read by the GoPro provider's own settings (pipeline/providers/gopro/config.py).
        GoProEnv.INCLUDE_EDITS.value: _flag(settings.include_edits),
        GoProEnv.INCLUDE_RAW.value: _flag(settings.include_raw),
    }
    if settings.gopro_api_url:
        environment[GoProEnv.API_URL.value] = settings.gopro_api_url
    if settings.gopro_auth_url:
        environment[GoProEnv.AUTH_URL.value] = settings.gopro_auth_url
    if settings.allowed_download_hosts:
        environment[EnvVar.ALLOWED_DOWNLOAD_HOSTS] = ",".join(settings.allowed_download_hosts)
    return environment


def grant_permissions(
    pipeline: Pipeline, storage: Storage, topic: sns.ITopic, secret: secretsmanager.ISecret
) -> None:
    settings, key = pipeline.settings, pipeline.key
    lister, downloader, summary, rotation = (
        pipeline.lister,
        pipeline.downloader,
        pipeline.summary,
        pipeline.rotation,
    )
    queue, dead_letter_queue = pipeline.queue, pipeline.dead_letter_queue
    table_resources = [
        storage.table.table_arn,
        f"{storage.table.table_arn}/index/{resources.STATUS_INDEX_NAME}",
    ]
    for fn in pipeline.functions:
        fn.role.add_to_policy(
            iam.PolicyStatement(
                sid="StateTable", actions=list(TABLE_ACTIONS[fn.purpose]), resources=table_resources
            )
        )
        fn.role.add_to_policy(
            iam.PolicyStatement(sid="EnvironmentKey", actions=list(KEY_ACTIONS), resources=[key.key_arn])
        )

    # Tokens: the lister and the downloaders read them and, on expiry, one of them refreshes and saves.
    for fn in (lister, downloader):
        fn.role.add_to_policy(
            iam.PolicyStatement(
                sid="CredentialsSecret",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                resources=[secret.secret_arn],
            )
        )

    lister.role.add_to_policy(
        iam.PolicyStatement(sid="EnqueueDownloads", actions=["sqs:SendMessage"], resources=[queue.queue_arn])
    )
    # A listing that runs out of time continues in a new asynchronous invocation of itself. The ARN is built
    # from the name: a reference to the function would make its role policy depend on the function, which
    # already depends on the policy.
    own_arn = Stack.of(pipeline).format_arn(
        service="lambda",
        resource="function",
        resource_name=lister.function_name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    lister.role.add_to_policy(
        iam.PolicyStatement(sid="ContinueListing", actions=["lambda:InvokeFunction"], resources=[own_arn])
    )
    # The downloader re-enqueues a transfer that needs more than one invocation (a continuation message) and
    # moves an unparseable message straight to the dead-letter queue instead of failing it three times.
    downloader.role.add_to_policy(
        iam.PolicyStatement(
            sid="ContinueOrDeadLetter",
            actions=["sqs:SendMessage"],
            resources=[queue.queue_arn, dead_letter_queue.queue_arn],
        )
    )

    provider_objects = storage.archive_bucket.arn_for_objects(f"{settings.provider}/*")
    downloader.role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteArchiveObjects",
            actions=[
                "s3:PutObject",
                "s3:GetObject",  # HeadObject: the idempotency check before a transfer
                "s3:PutObjectTagging",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            resources=[provider_objects],
        )
    )
    downloader.role.add_to_policy(
        iam.PolicyStatement(
            sid="ListArchive",  # without it a HeadObject on a missing key answers 403 instead of 404
            actions=["s3:ListBucket"],
            resources=[storage.archive_bucket.bucket_arn],
        )
    )

    # The summary reports the DLQ depth. The lister runs the same report itself on a night that enqueued
    # nothing (no queue activity, so no drain alarm would ever start the summary).
    for fn in (summary, lister):
        fn.role.add_to_policy(
            iam.PolicyStatement(
                sid="QueueDepths",
                actions=["sqs:GetQueueAttributes"],
                resources=[queue.queue_arn, dead_letter_queue.queue_arn],
            )
        )
    for fn in (summary, lister, rotation):
        fn.role.add_to_policy(
            iam.PolicyStatement(sid="Notify", actions=["sns:Publish"], resources=[topic.topic_arn])
        )

    compliance.acknowledge(
        downloader.role,
        "IAM5",
        "Object-level S3 permissions need an object wildcard; it is narrowed to the provider's prefix "
        "(pipeline/keys.py puts every medium under <provider>/) of this one bucket.",
        findings=[
            f"Resource::<{Stack.of(pipeline).get_logical_id(storage.archive_bucket.node.default_child)}.Arn>"
            f"/{settings.provider}/*"
        ],
    )


def limit_rotation_invocations_to_this_account(rotation: PipelineFunction) -> None:
    """CDK's rotation schedule lets `secretsmanager.amazonaws.com` invoke the function from any account;
    restricting it to this account closes the confused-deputy path (checkov CKV_AWS_364)."""
    for child in rotation.function.node.find_all():
        if isinstance(child, lambda_.CfnPermission) and child.principal == "secretsmanager.amazonaws.com":
            child.source_account = Aws.ACCOUNT_ID


def _flag(value: bool) -> str:
    return "true" if value else "false"
