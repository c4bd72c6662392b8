"""The state table's CreateTable arguments, built from `pipeline.resources` so every copy of the table agrees.

Why here: the local runtime and the tests provision the table through boto3 with exactly these arguments; the CDK
stack declares the same key and index from the same constants. On-demand billing: a nightly burst followed by
nothing is what PAY_PER_REQUEST prices well, and it has no provisioned throughput to tune per environment.

The status index projects ALL attributes: the status script and the summary list FAILED and IN_PROGRESS media
with their errors and lease ages straight from the index, and items are small (well under 1 KiB without a
checkpoint). Encryption at rest is DynamoDB's default (an AWS owned key); a customer managed key, if
wanted, is the CDK stack's choice and does not change how the table is used.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from pipeline import resources
from pipeline.aws_errors import RESOURCE_IN_USE, error_code

log = logging.getLogger(__name__)


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable keyword arguments for the state table named `table_name`."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": resources.TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": resources.STATUS_INDEX_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": resources.STATUS_INDEX_SORT_KEY, "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": resources.TABLE_PARTITION_KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": resources.STATUS_INDEX_NAME,
                "KeySchema": [
                    {"AttributeName": resources.STATUS_INDEX_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": resources.STATUS_INDEX_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def ensure_table(dynamodb: Any, table_name: str) -> bool:
    """Create the table if it does not exist and wait until it is usable. Returns True if it was created.

    Idempotent so the local runtime can call it on every start.
    """
    try:
        dynamodb.create_table(**table_definition(table_name))
    except ClientError as exc:
        if error_code(exc) != RESOURCE_IN_USE:
            raise
        log.debug("table %s already exists", table_name)
        created = False
    else:
        log.info("created table %s", table_name)
        created = True
    dynamodb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return created
