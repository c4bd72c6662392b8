"""One stack per deployment (one configuration file), composed of the components in `infra_cdk.components`.

Why one stack rather than one per concern: the pieces reference each other both ways (the bucket policy names the
downloader's role, the downloader's policy names the bucket; the key policy serves the topic, the topic is
encrypted by the key). Across stacks those references become CloudFormation exports, which freeze the exporting
resource and turn every change into a two-step deploy. In one stack a deploy is atomic and a rollback complete.
Stateful resources (key, buckets; table and secret in staging/prod) are retained if the stack is deleted.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra_cdk.components.alerting import Alerting
from infra_cdk.components.monitoring import Monitoring
from infra_cdk.components.network import Network
from infra_cdk.components.pipeline import Pipeline
from infra_cdk.components.security import Security
from infra_cdk.components.storage import Storage
from infra_cdk.settings import EnvironmentSettings


class GoProSyncStack(Stack):
    def __init__(self, scope: Construct, *, settings: EnvironmentSettings, **kwargs: Any) -> None:
        super().__init__(
            scope,
            settings.stack_name,
            description=(
                f"gopro-s3-sync ({settings.environment}, {settings.preset} preset): "
                "nightly GoPro cloud archive into S3"
            ),
            termination_protection=settings.table_deletion_protection,
            **kwargs,
        )
        self.settings = settings
        Tags.of(self).add("project", "gopro-s3-sync")
        Tags.of(self).add("environment", settings.environment)

        self.security = Security(self, "Security", settings=settings)
        key = self.security.key
        self.storage = Storage(self, "Storage", settings=settings, key=key)
        self.network = Network(self, "Network", settings=settings, key=key) if settings.vpc_enabled else None
        self.alerting = Alerting(self, "Alerting", settings=settings, key=key)
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            settings=settings,
            key=key,
            secret=self.security.credentials_secret,
            storage=self.storage,
            topic=self.alerting.topic,
            network=self.network,
        )
        self.monitoring = Monitoring(
            self, "Monitoring", settings=settings, pipeline=self.pipeline, topic=self.alerting.topic
        )

        outputs = {
            "ArchiveBucketName": self.storage.archive_bucket.bucket_name,
            "StateTableName": self.storage.table.table_name,
            "DownloadQueueUrl": self.pipeline.queue.queue_url,
            "DeadLetterQueueUrl": self.pipeline.dead_letter_queue.queue_url,
            "AlertsTopicArn": self.alerting.topic.topic_arn,
            "CredentialsSecretName": settings.names.credentials_secret,
            "ListerFunctionName": self.pipeline.lister.function_name,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
