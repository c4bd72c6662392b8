"""The event-driven pipeline: schedule -> lister -> queue -> downloaders -> (queue drained) -> summary.

- EventBridge Scheduler starts the lister at the configured time and IANA time zone (02:00 Europe/Paris unless
  the configuration file says otherwise). Scheduler evaluates the cron in the time zone itself, so the run stays
  at the same local time across daylight-saving changes (an EventBridge rule's cron is UTC).
- The lister enqueues one message per medium to archive. The downloader consumes them through an SQS event source
  (batch size 1, MaximumConcurrency from the configuration, 5 by default: GoPro-friendly), reporting failed
  items so a batch is never retried as a whole. A message that fails three receives moves to the dead-letter queue.
- The visibility timeout is 6x the downloader's timeout (AWS guidance for Lambda event sources), so a message is
  never handed to a second downloader while the first may still be working on it.
- Queue drained -> summary: see `_drain_detection`.
- Asynchronously invoked functions (lister by Scheduler, summary by EventBridge, rotation by Secrets Manager)
  send events that failed all retries to the `failed-invocations` queue, which is alarmed like the DLQ.

Permissions are written out statement by statement (`_grant_*`) instead of CDK's `grant*` helpers, which add
wildcard KMS actions (`kms:GenerateDataKey*`, `kms:ReEncrypt*`) nobody here needs.
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk import bundling, compliance
from infra_cdk.components.function import PipelineFunction
from infra_cdk.components.network import Network
from infra_cdk.components.restores import RestoreNotifications
from infra_cdk.components.storage import Storage
from infra_cdk.settings import DRAIN_EVALUATION_MINUTES, EnvironmentSettings
from pipeline import resources
from pipeline.config import EnvVar
from pipeline.providers.gopro.config import GoProEnv

HANDLERS = {
    "lister": "pipeline.handlers.lister.handler",
    "downloader": "pipeline.handlers.downloader.handler",
    "summary": "pipeline.handlers.summary.handler",
    "rotation": "pipeline.handlers.rotation.handler",
}

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


class Pipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        key: kms.IKey,
        secret: secretsmanager.Secret,
        storage: Storage,
        topic: sns.ITopic,
        network: Network | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._key = key
        names = settings.names

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=names.dead_letter_queue,
            retention_period=Duration.days(resources.DLQ_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "DownloadQueue",
            queue_name=names.queue,
            visibility_timeout=Duration.seconds(resources.QUEUE_VISIBILITY_TIMEOUT_SECONDS),
            retention_period=Duration.days(resources.QUEUE_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=resources.MAX_RECEIVE_COUNT
            ),
        )
        self.failed_invocations = sqs.Queue(
            self,
            "FailedInvocationsQueue",
            queue_name=settings.resource_name("failed-invocations"),
            retention_period=Duration.days(resources.DLQ_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
        )
        for dlq in (self.dead_letter_queue, self.failed_invocations):
            compliance.acknowledge(
                dlq,
                "SQS3",
                "This queue is itself a dead-letter queue (of the download queue, or of the asynchronous "
                "invocations); a dead-letter queue of a dead-letter queue would only hide failures further.",
            )

        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=bundling.dependencies_code(),
            compatible_runtimes=[bundling.RUNTIME],
            compatible_architectures=[bundling.ARCHITECTURE],
            description="gopro-s3-sync runtime dependencies (requirements.txt, manylinux2014 aarch64 wheels)",
        )
        code = bundling.pipeline_code()
        environment = self._environment(storage, topic)

        def make(purpose: str, description: str, **kwargs: object) -> PipelineFunction:
            return PipelineFunction(
                self,
                purpose.capitalize(),
                settings=settings,
                purpose=purpose,
                handler=HANDLERS[purpose],
                description=description,
                sizing=getattr(settings, purpose),
                code=code,
                layer=self.layer,
                key=key,
                environment=environment,
                network=network,
                **kwargs,  # type: ignore[arg-type]
            )

        self.lister = make(
            "lister",
            "Lists the GoPro library and enqueues every medium not yet archived",
            dead_letter_queue=self.failed_invocations,
            # No Lambda-level retry: the provider already retries GoPro's transient errors, and a failed listing
            # has recorded its run as failed and sent the CRITICAL report; a retry would start a second run.
            retry_attempts=0,
        )
        self.downloader = make("downloader", "Streams one medium from GoPro into the archive bucket")
        self.summary = make(
            "summary",
            "Reports the latest finished run to the alerts topic",
            dead_letter_queue=self.failed_invocations,
            retry_attempts=2,
        )
        self.rotation = make(
            "rotation",
            "Rotates the GoPro credentials secret (refresh-token renewal)",
            dead_letter_queue=self.failed_invocations,
        )
        compliance.skip_checkov(
            self.downloader.function,
            "CKV_AWS_116",
            "The downloader is only invoked synchronously by its SQS event source; failed messages go to the "
            "download queue's own dead-letter queue (maxReceiveCount 3), a function DLQ would never receive them.",
        )
        self.functions = (self.lister, self.downloader, self.summary, self.rotation)

        self._grant_permissions(storage, topic, secret)
        self.downloader.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=resources.DOWNLOADER_BATCH_SIZE,
                max_concurrency=settings.downloader_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        storage.restrict_writes_to([self.downloader.role])
        secret.add_rotation_schedule(
            "Rotation",
            rotation_lambda=self.rotation.function,
            automatically_after=Duration.days(resources.SECRET_ROTATION_DAYS),
            # The secret holds a placeholder until scripts/bootstrap_credentials.py runs; rotating it at deploy
            # time would fail and page someone for nothing.
            rotate_immediately_on_update=False,
        )
        self._limit_rotation_invocations_to_this_account()
        self.schedule = self._schedule()
        self.drain_alarm = self._drain_detection()
        self.restores = RestoreNotifications(
            self,
            "RestoreNotifications",
            settings=settings,
            storage=storage,
            topic=topic,
            key=key,
            code=code,
            layer=self.layer,
            environment=environment,
            network=network,
            dead_letter_queue=self.failed_invocations,
        )

    # --- environment and permissions ----------------------------------------------------------------------------

    def _environment(self, storage: Storage, topic: sns.ITopic) -> dict[str, str]:
        settings = self._settings
        environment = {
            EnvVar.ENVIRONMENT: settings.environment,
            EnvVar.PROVIDER: settings.provider,
            EnvVar.TABLE_NAME: storage.table.table_name,
            EnvVar.BUCKET_NAME: storage.archive_bucket.bucket_name,
            EnvVar.QUEUE_URL: self.queue.queue_url,
            EnvVar.DLQ_URL: self.dead_letter_queue.queue_url,
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

    def _grant_permissions(self, storage: Storage, topic: sns.ITopic, secret: secretsmanager.ISecret) -> None:
        table_resources = [
            storage.table.table_arn,
            f"{storage.table.table_arn}/index/{resources.STATUS_INDEX_NAME}",
        ]
        for fn in self.functions:
            fn.role.add_to_policy(
                iam.PolicyStatement(
                    sid="StateTable", actions=list(TABLE_ACTIONS[fn.purpose]), resources=table_resources
                )
            )
            fn.role.add_to_policy(
                iam.PolicyStatement(sid="EnvironmentKey", actions=list(KEY_ACTIONS), resources=[self._key.key_arn])
            )

        # Tokens: the lister and the downloaders read them and, on expiry, one of them refreshes and saves.
        for fn in (self.lister, self.downloader):
            fn.role.add_to_policy(
                iam.PolicyStatement(
                    sid="CredentialsSecret",
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                    resources=[secret.secret_arn],
                )
            )

        self.lister.role.add_to_policy(
            iam.PolicyStatement(
                sid="EnqueueDownloads", actions=["sqs:SendMessage"], resources=[self.queue.queue_arn]
            )
        )
        # A listing that runs out of time continues in a new asynchronous invocation of itself. The ARN is built
        # from the name: a reference to the function would make its role policy depend on the function, which
        # already depends on the policy.
        own_arn = Stack.of(self).format_arn(
            service="lambda",
            resource="function",
            resource_name=self.lister.function_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.lister.role.add_to_policy(
            iam.PolicyStatement(sid="ContinueListing", actions=["lambda:InvokeFunction"], resources=[own_arn])
        )
        # The downloader re-enqueues a transfer that needs more than one invocation (a continuation message) and
        # moves an unparseable message straight to the dead-letter queue instead of failing it three times.
        self.downloader.role.add_to_policy(
            iam.PolicyStatement(
                sid="ContinueOrDeadLetter",
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn, self.dead_letter_queue.queue_arn],
            )
        )

        provider_objects = storage.archive_bucket.arn_for_objects(f"{self._settings.provider}/*")
        self.downloader.role.add_to_policy(
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
        self.downloader.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListArchive",  # without it a HeadObject on a missing key answers 403 instead of 404
                actions=["s3:ListBucket"],
                resources=[storage.archive_bucket.bucket_arn],
            )
        )

        # The summary reports the DLQ depth. The lister runs the same report itself on a night that enqueued
        # nothing (no queue activity, so no drain alarm would ever start the summary).
        for fn in (self.summary, self.lister):
            fn.role.add_to_policy(
                iam.PolicyStatement(
                    sid="QueueDepths",
                    actions=["sqs:GetQueueAttributes"],
                    resources=[self.queue.queue_arn, self.dead_letter_queue.queue_arn],
                )
            )
        for fn in (self.summary, self.lister, self.rotation):
            fn.role.add_to_policy(
                iam.PolicyStatement(sid="Notify", actions=["sns:Publish"], resources=[topic.topic_arn])
            )

        compliance.acknowledge(
            self.downloader.role,
            "IAM5",
            "Object-level S3 permissions need an object wildcard; it is narrowed to the provider's prefix "
            "(pipeline/keys.py puts every medium under <provider>/) of this one bucket.",
            findings=[
                f"Resource::<{Stack.of(self).get_logical_id(storage.archive_bucket.node.default_child)}.Arn>"
                f"/{self._settings.provider}/*"
            ],
        )

    def _limit_rotation_invocations_to_this_account(self) -> None:
        """CDK's rotation schedule lets `secretsmanager.amazonaws.com` invoke the function from any account;
        restricting it to this account closes the confused-deputy path (checkov CKV_AWS_364)."""
        for child in self.rotation.function.node.find_all():
            if isinstance(child, lambda_.CfnPermission) and child.principal == "secretsmanager.amazonaws.com":
                child.source_account = Aws.ACCOUNT_ID

    # --- schedule ----------------------------------------------------------------------------------------------

    def _schedule(self) -> scheduler.CfnSchedule:
        settings = self._settings
        role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description=f"gopro-sync {settings.environment}: EventBridge Scheduler starts the lister",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StartLister", actions=["lambda:InvokeFunction"], resources=[self.lister.function.function_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DeadLetters", actions=["sqs:SendMessage"], resources=[self.failed_invocations.queue_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EnvironmentKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self._key.key_arn]
            )
        )
        schedule = scheduler.CfnSchedule(
            self,
            "NightlySchedule",
            name=settings.resource_name("nightly"),
            description=(
                f"Starts the nightly sync ({settings.schedule_expression} in {settings.schedule_timezone}, "
                "daylight saving included)"
            ),
            schedule_expression=settings.schedule_expression,
            schedule_expression_timezone=settings.schedule_timezone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED" if settings.schedule_enabled else "DISABLED",
            kms_key_arn=self._key.key_arn,
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.lister.function.function_arn,
                role_arn=role.role_arn,
                input=json.dumps({"trigger": "schedule", "provider": settings.provider}),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.failed_invocations.queue_arn
                ),
            ),
        )
        # The permissions must exist before the first invocation (the role itself is already a GetAtt dependency).
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            schedule.node.add_dependency(policy)
        return schedule

    # --- queue drained -> summary -------------------------------------------------------------------------------

    def _drain_detection(self) -> cloudwatch.Alarm:
        """An alarm that goes to ALARM when the queue has drained after a run, and a rule that starts the summary.

        busy = visible + in flight + sent (each per minute, missing = 0). While a run works, busy > 0 and the
        alarm is OK; once nothing has been waiting, in flight or sent for DRAIN_EVALUATION_MINUTES consecutive
        minutes it goes to ALARM. The rule only fires on OK -> ALARM, i.e. on a drain that follows activity
        ("visible + in flight = 0 after messages were sent"), never on the alarm's creation or on an idle day.
        Delay: the evaluation window (5 min) plus CloudWatch's SQS metric delay (1-3 min, up to ~5) plus
        EventBridge (seconds): the report arrives about 6-10 minutes after the last download ends.
        """
        period = Duration.minutes(1)
        busy = cloudwatch.MathExpression(
            expression="FILL(visible, 0) + FILL(inflight, 0) + FILL(sent, 0)",
            using_metrics={
                "visible": self.queue.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"
                ),
                "inflight": self.queue.metric_approximate_number_of_messages_not_visible(
                    period=period, statistic="Maximum"
                ),
                "sent": self.queue.metric_number_of_messages_sent(period=period, statistic="Sum"),
            },
            period=period,
            label="Messages waiting, in flight or sent",
        )
        alarm = busy.create_alarm(
            self,
            "QueueDrainedAlarm",
            alarm_name=self._settings.resource_name("queue-drained"),
            alarm_description=(
                "Not an alert: goes to ALARM when the download queue has drained after a run; an EventBridge rule "
                "then starts the summary function. OK while a run is working."
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=DRAIN_EVALUATION_MINUTES,
            datapoints_to_alarm=DRAIN_EVALUATION_MINUTES,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            actions_enabled=True,
        )
        rule = events.Rule(
            self,
            "RunFinishedRule",
            rule_name=self._settings.resource_name("run-finished"),
            description="Starts the summary when the download queue has drained after a run",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[alarm.alarm_arn],
                detail={"state": {"value": ["ALARM"]}, "previousState": {"value": ["OK"]}},
            ),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.summary.function,
                dead_letter_queue=self.failed_invocations,
                retry_attempts=4,
                max_event_age=Duration.hours(2),
            )
        )
        return alarm


def _flag(value: bool) -> str:
    return "true" if value else "false"
