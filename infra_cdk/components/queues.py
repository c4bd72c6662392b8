"""The pipeline's three queues: downloads, their dead-letter queue, and the failed asynchronous invocations.

- The lister enqueues one message per medium; a message that fails `resources.MAX_RECEIVE_COUNT` receives moves to
  the dead-letter queue. Retention is `resources.QUEUE_RETENTION_DAYS` (a backfill may keep messages waiting for
  days; the age alarm of `components.monitoring` warns well before they expire).
- The visibility timeout is 6x the downloader's timeout (AWS guidance for Lambda event sources), so a message is
  never handed to a second downloader while the first may still be working on it.
- Asynchronously invoked functions (lister by Scheduler, summary by EventBridge, rotation by Secrets Manager,
  restore-completed by EventBridge) send events that failed all retries to `failed-invocations`, alarmed like the
  DLQ.

The queues are created in the `Pipeline` construct's own scope (`scope`), so their construct paths, and so their
logical ids, are those they had when `pipeline.py` created them itself: moving code never replaces a queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk import compliance
from infra_cdk.settings import EnvironmentSettings
from pipeline import resources


@dataclass(frozen=True)
class PipelineQueues:
    queue: sqs.Queue
    dead_letter_queue: sqs.Queue
    failed_invocations: sqs.Queue


def build_queues(scope: Construct, *, settings: EnvironmentSettings, key: kms.IKey) -> PipelineQueues:
    names = settings.names
    dead_letter_queue = sqs.Queue(
        scope,
        "DeadLetterQueue",
        queue_name=names.dead_letter_queue,
        retention_period=Duration.days(resources.DLQ_RETENTION_DAYS),
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
    )
    queue = sqs.Queue(
        scope,
        "DownloadQueue",
        queue_name=names.queue,
        visibility_timeout=Duration.seconds(resources.QUEUE_VISIBILITY_TIMEOUT_SECONDS),
        retention_period=Duration.days(resources.QUEUE_RETENTION_DAYS),
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        dead_letter_queue=sqs.DeadLetterQueue(
            queue=dead_letter_queue, max_receive_count=resources.MAX_RECEIVE_COUNT
        ),
    )
    failed_invocations = sqs.Queue(
        scope,
        "FailedInvocationsQueue",
        queue_name=settings.resource_name("failed-invocations"),
        retention_period=Duration.days(resources.DLQ_RETENTION_DAYS),
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
    )
    for dlq in (dead_letter_queue, failed_invocations):
        compliance.acknowledge(
            dlq,
            "SQS3",
            "This queue is itself a dead-letter queue (of the download queue, or of the asynchronous "
            "invocations); a dead-letter queue of a dead-letter queue would only hide failures further.",
        )
    return PipelineQueues(queue=queue, dead_letter_queue=dead_letter_queue, failed_invocations=failed_invocations)
