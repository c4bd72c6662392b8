"""The alerts topic: every alarm, the nightly summary and rotation notices go to one SNS topic.

Why a customer managed key rather than SNS's AWS managed key: CloudWatch alarms cannot publish to a topic
encrypted with `alias/aws/sns` (its key policy cannot be changed to admit CloudWatch); the environment's key
allows `cloudwatch.amazonaws.com` (see security.py) and the topic policy admits alarms of this account only.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra_cdk.settings import EnvironmentSettings


class Alerting(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "AlertsTopic",
            topic_name=settings.names.topic,
            display_name=f"gopro-sync {settings.environment}",
            master_key=key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                    },
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
        if settings.alert_email:
            # The address must confirm the subscription (SNS sends a link) before any alert is delivered.
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alert_email))
