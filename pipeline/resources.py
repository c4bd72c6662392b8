"""Names and shapes of the AWS resources, shared by the CDK stack, the local runtime and the scripts.

Why one module: the queue's visibility timeout, the DLQ's maxReceiveCount and the table's key design must be
identical in the deployed stack and in the local stack the tests run against; two copies would drift. This module
imports nothing but the standard library so `infra_cdk` can use it without pulling in the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
DEFAULT_ENVIRONMENT = "dev"

# --- Lambda and queue parameters -------------------------------------------------------------------------------
DOWNLOADER_TIMEOUT_SECONDS = 900
DOWNLOADER_MEMORY_MB = 1024
DOWNLOADER_MAX_CONCURRENCY = 5
DOWNLOADER_BATCH_SIZE = 1
LISTER_TIMEOUT_SECONDS = 300
LISTER_MEMORY_MB = 512
SUMMARY_TIMEOUT_SECONDS = 60
SUMMARY_MEMORY_MB = 256
ROTATION_TIMEOUT_SECONDS = 60
ROTATION_MEMORY_MB = 256
# AWS asks for at least 6x the function timeout so a message is not redelivered while a retry is still running.
QUEUE_VISIBILITY_TIMEOUT_SECONDS = 6 * DOWNLOADER_TIMEOUT_SECONDS
MAX_RECEIVE_COUNT = 3
# A failed delivery is made visible again after this long (by receive count 1, 2) instead of the 90-minute
# visibility timeout, so a night with a transient failure finishes and reports within minutes, not hours.
RETRY_VISIBILITY_SECONDS: tuple[int, ...] = (60, 300)
# The main queue keeps a message 14 days (SQS's maximum). A backfill never relies on that: each night queues only
# what the downloaders can finish before the next one (pipeline.services.backlog), so no message should ever be
# older than a night; the age alarm and the listing's expiry check say so when one is.
QUEUE_RETENTION_DAYS = 14
DLQ_RETENTION_DAYS = 14
# A message older than this is a sign the night's work was sized wrong (QueueMessagesAging alarm).
QUEUE_AGE_ALARM_DAYS = 2
SECRET_ROTATION_DAYS = 30
LOG_RETENTION_DAYS = 30
SCHEDULE_CRON = "cron(0 2 * * ? *)"
SCHEDULE_TIMEZONE = "Europe/Paris"

# --- DynamoDB table design -------------------------------------------------------------------------------------
# One partition key that joins provider and media id ("gopro#62NzWRrpPXm7o"): items spread over partitions, and
# two providers can never collide on an id. Run records ("run#<run_id>") and listing cursors ("cursor#gopro")
# share the table; they carry no `status` attribute, so the status index stays sparse and holds media only.
TABLE_PARTITION_KEY = "pk"
STATUS_INDEX_NAME = "status-sync_timestamp-index"
STATUS_INDEX_PARTITION_KEY = "status"
STATUS_INDEX_SORT_KEY = "sync_timestamp"
KEY_SEPARATOR = "#"
RUN_KEY_PREFIX = "run"
CURSOR_KEY_PREFIX = "cursor"
LOCK_KEY_PREFIX = "lock"

# --- Metrics ---------------------------------------------------------------------------------------------------
METRICS_NAMESPACE = "GoProSync"
# Every EMF metric carries exactly these two dimensions (values: the environment and the provider name); the
# stack's alarms and dashboard select metrics by this dimension set, so a metric emitted with another set is
# invisible to them.
METRIC_DIMENSION_ENVIRONMENT = "Environment"
METRIC_DIMENSION_PROVIDER = "Provider"
DEFAULT_PROVIDER = "gopro"


def media_key(provider: str, media_id: str) -> str:
    """The table's partition key for one medium of one provider."""
    return f"{provider}{KEY_SEPARATOR}{media_id}"


def run_key(run_id: str) -> str:
    return f"{RUN_KEY_PREFIX}{KEY_SEPARATOR}{run_id}"


def cursor_key(provider: str) -> str:
    return f"{CURSOR_KEY_PREFIX}{KEY_SEPARATOR}{provider}"


def lock_key(name: str) -> str:
    """A short-lived mutual-exclusion item (for example the one token refresh all downloaders wait on)."""
    return f"{LOCK_KEY_PREFIX}{KEY_SEPARATOR}{name}"


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of one environment's resources.

    Every environment gets its own suffix so dev, staging and prod can live in one account without sharing state.
    The S3 bucket is not named here: bucket names are global, so the stack lets CloudFormation generate one and
    passes it to the functions through the environment (the local stack uses `local_bucket`).
    """

    environment: str
    table: str
    queue: str
    dead_letter_queue: str
    topic: str
    credentials_secret: str
    local_bucket: str
    metrics_namespace: str = METRICS_NAMESPACE


def names_for(environment: str) -> ResourceNames:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}; expected one of {', '.join(ENVIRONMENTS)}")
    return ResourceNames(
        environment=environment,
        table=f"gopro-sync-tracker-{environment}",
        queue=f"gopro-sync-downloads-{environment}",
        dead_letter_queue=f"gopro-sync-downloads-dlq-{environment}",
        topic=f"gopro-sync-alerts-{environment}",
        credentials_secret=f"gopro/credentials/{environment}",
        local_bucket=f"gopro-sync-archive-{environment}",
    )
