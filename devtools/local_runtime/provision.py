"""Creates the resources the CDK stack deploys, with the same names and parameters, on any AWS endpoint.

Idempotent: running it twice changes nothing. The values come from `pipeline.resources` (shared with
`infra_cdk`), so the local queue has the deployed queue's visibility timeout and maxReceiveCount.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline import resources
from pipeline.credentials.model import ProviderCredentials
from pipeline.state import ensure_table

log = logging.getLogger(__name__)
DAY = 24 * 3600


@dataclass(frozen=True)
class Provisioned:
    table: str
    bucket: str
    queue_url: str
    dlq_url: str
    topic_arn: str
    secret_id: str


def provision(
    clients: Any, names: resources.ResourceNames, region: str, credentials: ProviderCredentials
) -> Provisioned:
    """`clients(service)` returns a boto3 client for the target endpoint."""
    ensure_table(clients("dynamodb"), names.table)
    bucket = _bucket(clients("s3"), names.local_bucket, region)
    dlq_url, queue_url = _queues(clients("sqs"), names)
    topic_arn = clients("sns").create_topic(Name=names.topic)["TopicArn"]
    _secret(clients("secretsmanager"), names.credentials_secret, credentials)
    return Provisioned(names.table, bucket, queue_url, dlq_url, topic_arn, names.credentials_secret)


def _bucket(s3: Any, name: str, region: str) -> str:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _queues(sqs: Any, names: resources.ResourceNames) -> tuple[str, str]:
    dlq_url = sqs.create_queue(
        QueueName=names.dead_letter_queue,
        Attributes={"MessageRetentionPeriod": str(resources.DLQ_RETENTION_DAYS * DAY)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={
            "VisibilityTimeout": str(resources.QUEUE_VISIBILITY_TIMEOUT_SECONDS),
            "MessageRetentionPeriod": str(resources.QUEUE_RETENTION_DAYS * DAY),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(resources.MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    return dlq_url, queue_url


def _secret(secrets: Any, secret_id: str, credentials: ProviderCredentials) -> None:
    try:
        secrets.create_secret(Name=secret_id, SecretString=credentials.to_json())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
            raise
        secrets.put_secret_value(SecretId=secret_id, SecretString=credentials.to_json())
