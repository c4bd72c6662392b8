"""The customer managed KMS key and the provider credentials secret.

Why one key for the environment: everything here holds the same person's data (media, their state, their GoPro
tokens, the alerts that name their files) and is used by the same four roles, so separate keys would add cost
and key-policy surface without separating anyone. The key rotates yearly (KMS automatic rotation) and is
retained when the stack is deleted: the archive bucket is retained too, and objects encrypted under a deleted key
are lost.

Service principals in the key policy, each for one integration that cannot use IAM roles:
- CloudWatch alarms publish to the encrypted alerts topic (`cloudwatch.amazonaws.com`);
- EventBridge delivers undeliverable summary triggers to the encrypted failed-invocations queue;
- CloudWatch Logs encrypts the log groups, restricted by encryption context to this account's log groups.
"""

from __future__ import annotations

import json

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra_cdk.settings import EnvironmentSettings


class Security(Construct):
    """The environment's KMS key and the GoPro credentials secret (rotation is attached by the pipeline)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{settings.resource_name('data')}",
            description=f"gopro-s3-sync {settings.environment}: archive, state, credentials, queues, alerts, logs",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._allow_services()

        # The real value is written by scripts/bootstrap_credentials.py after the first deploy; until then the
        # placeholder makes the lister fail loudly ("not bootstrapped") instead of calling GoPro with garbage.
        self.credentials_secret = secretsmanager.Secret(
            self,
            "CredentialsSecret",
            secret_name=settings.names.credentials_secret,
            description=f"GoPro OAuth credentials for gopro-s3-sync {settings.environment} (JSON)",
            encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"bootstrap": "pending"}),
                generate_string_key="placeholder",
                exclude_punctuation=True,
            ),
            removal_policy=RemovalPolicy.RETAIN if settings.retain_state else RemovalPolicy.DESTROY,
        )

    def _allow_services(self) -> None:
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeToWriteEncryptedDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisAccountsLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
