"""The event-driven pipeline: schedule -> lister -> queue -> downloaders -> (queue drained) -> summary.

This construct composes the pieces, each in its own module:
- `queues`: the download queue, its dead-letter queue and the failed-invocations queue;
- the functions (here): lister, downloader, summary, rotation on one code asset and one dependency layer, and the
  downloader's SQS event source (batch size 1, MaximumConcurrency from the configuration, 5 by default:
  GoPro-friendly), reporting failed items so a batch is never retried as a whole;
- `permissions`: each function's IAM statements and environment;
- `schedule`: the nightly schedule that starts the lister, and the drain detection that starts the summary;
- `restores`: the restore-completed function and its S3 event rule.

Every helper creates its resources in this construct's scope, so construct paths (and logical ids) stay what they
were when this one module did it all.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra_cdk import bundling, compliance
from infra_cdk.components.function import PipelineFunction
from infra_cdk.components.network import Network
from infra_cdk.components.permissions import (
    function_environment,
    grant_permissions,
    limit_rotation_invocations_to_this_account,
)
from infra_cdk.components.queues import build_queues
from infra_cdk.components.restores import RestoreNotifications
from infra_cdk.components.schedule import drain_detection, nightly_schedule
from infra_cdk.components.storage import Storage
from infra_cdk.settings import EnvironmentSettings
from pipeline import resources
from pipeline.config import EnvVar

HANDLERS = {
    "lister": "pipeline.handlers.lister.handler",
    "downloader": "pipeline.handlers.downloader.handler",
    "summary": "pipeline.handlers.summary.handler",
    "rotation": "pipeline.handlers.rotation.handler",
}


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
        self.settings = settings
        self.key = key

        queues = build_queues(self, settings=settings, key=key)
        self.queue = queues.queue
        self.dead_letter_queue = queues.dead_letter_queue
        self.failed_invocations = queues.failed_invocations

        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=bundling.dependencies_code(),
            compatible_runtimes=[bundling.RUNTIME],
            compatible_architectures=[bundling.ARCHITECTURE],
            description="gopro-s3-sync runtime dependencies (requirements.txt, manylinux2014 aarch64 wheels)",
        )
        code = bundling.pipeline_code()
        environment = function_environment(settings, storage, topic, queues)

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
        # The functions that share the state table and the permissions of `permissions.TABLE_ACTIONS`.
        self.functions = (self.lister, self.downloader, self.summary, self.rotation)

        grant_permissions(self, storage, topic, secret)
        self.downloader.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=resources.DOWNLOADER_BATCH_SIZE,
                max_concurrency=settings.downloader_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        storage.restrict_writes_to([self.downloader.role], operators=settings.archive_operators)
        if settings.nightly_budget_bytes:  # absent: the lister measures what a night can take
            self.lister.function.add_environment(EnvVar.NIGHTLY_BUDGET_BYTES, str(settings.nightly_budget_bytes))
        secret.add_rotation_schedule(
            "Rotation",
            rotation_lambda=self.rotation.function,
            automatically_after=Duration.days(resources.SECRET_ROTATION_DAYS),
            # The secret holds a placeholder until scripts/bootstrap_credentials.py runs; rotating it at deploy
            # time would fail and page someone for nothing.
            rotate_immediately_on_update=False,
        )
        limit_rotation_invocations_to_this_account(self.rotation)
        self.schedule = nightly_schedule(
            self, settings=settings, key=key, lister=self.lister, failed_invocations=self.failed_invocations
        )
        self.drain_alarm = drain_detection(
            self,
            settings=settings,
            queue=self.queue,
            summary=self.summary,
            failed_invocations=self.failed_invocations,
        )
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

    @property
    def all_functions(self) -> tuple[PipelineFunction, ...]:
        """Every function of the stack, the restore-completed one too: what the alarms and the dashboard watch."""
        return (*self.functions, self.restores.function)
