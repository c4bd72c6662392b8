"""The DynamoDB backend: the one place the state table's low-level client is called.

Design choices, and why:
- **The low-level client, not `boto3.resource`.** Resources are not thread-safe (the downloader writes
  checkpoints from a second thread while parts upload), they are deprecated for new features, and they hide the
  error response where DynamoDB returns the item that failed a condition (`ReturnValuesOnConditionCheckFailure`),
  which is how a refused claim says *why* without a second read. botocore's Stubber and event hooks also work
  directly on a client, which the failure-path tests use.
- **Conditional writes are answers, not errors.** A ConditionalCheckFailed becomes a `WriteResult` here, once,
  for every write; it is never retried. Throughput errors are retried by botocore's standard retry mode (see
  `pipeline.aws_clients`); if they outlast it, the ClientError propagates and SQS redelivers the message.
- **BatchGetItem's UnprocessedKeys are retried here** with jittered backoff (botocore does not: the call itself
  succeeded), and raise `UnprocessedKeysError` if they outlast it rather than silently reading as "no record".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from pipeline import resources
from pipeline.aws_errors import is_condition_failure
from pipeline.retry import RetryPolicy
from pipeline.state.backend import WriteResult
from pipeline.state.expressions import Compare, Condition, Item, Placeholders, Update
from pipeline.state.items import deserialize, serialize
from pipeline.state.models import UnprocessedKeysError

log = logging.getLogger(__name__)

BATCH_GET_MAX_KEYS = 100  # DynamoDB's limit per BatchGetItem call


def _key(key: str) -> dict[str, Any]:
    return {resources.TABLE_PARTITION_KEY: {"S": key}}


def _expression_kwargs(p: Placeholders, **expressions: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {name: text for name, text in expressions.items() if text}
    if p.names:
        kwargs["ExpressionAttributeNames"] = p.names
    if p.values:
        kwargs["ExpressionAttributeValues"] = serialize(p.values)
    return kwargs


@dataclass
class DynamoTable:
    """The state table over a low-level DynamoDB client (see the module docstring)."""

    client: Any
    table_name: str
    # Backoff for BatchGetItem's UnprocessedKeys.
    unprocessed_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=2.0)
    )
    sleep: Callable[[float], None] = time.sleep

    # --- reads -------------------------------------------------------------------------------------------------

    def get(self, key: str, *, consistent: bool = True) -> Item | None:
        response = self.client.get_item(TableName=self.table_name, Key=_key(key), ConsistentRead=consistent)
        item = response.get("Item")
        return deserialize(item) if item else None

    def batch_get(self, keys: Sequence[str], *, projection: Sequence[str], consistent: bool) -> list[Item]:
        unique = list(dict.fromkeys(keys))  # BatchGetItem rejects duplicate keys
        found: list[Item] = []
        for start in range(0, len(unique), BATCH_GET_MAX_KEYS):
            chunk = [_key(key) for key in unique[start : start + BATCH_GET_MAX_KEYS]]
            found.extend(deserialize(item) for item in self._batch_get_chunk(chunk, projection, consistent))
        return found

    def _batch_get_chunk(
        self, keys: list[dict[str, Any]], projection: Sequence[str], consistent: bool
    ) -> Iterator[dict[str, Any]]:
        names = {f"#{attr}": attr for attr in projection}
        delays = self.unprocessed_retry.delays()
        attempt = 0
        pending = keys
        while pending:
            attempt += 1
            response = self.client.batch_get_item(
                RequestItems={
                    self.table_name: {
                        "Keys": pending,
                        "ProjectionExpression": ", ".join(names),
                        "ExpressionAttributeNames": names,
                        "ConsistentRead": consistent,
                    }
                }
            )
            yield from response.get("Responses", {}).get(self.table_name, [])
            pending = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if not pending:
                return
            if attempt >= self.unprocessed_retry.max_attempts:
                raise UnprocessedKeysError(len(pending), attempt)
            wait = next(delays)
            log.info(
                "BatchGetItem left %d of %d keys unprocessed; retry %d in %.2fs",
                len(pending),
                len(keys),
                attempt,
                wait,
            )
            self.sleep(wait)

    # --- writes ------------------------------------------------------------------------------------------------

    def put(self, key: str, item: Item, *, condition: Condition | None = None) -> WriteResult:
        p = Placeholders()
        kwargs = _expression_kwargs(p, ConditionExpression=condition.render(p) if condition else None)
        full = {resources.TABLE_PARTITION_KEY: key, **item}
        return self._write(
            lambda: self.client.put_item(TableName=self.table_name, Item=serialize(full), **kwargs), key, False
        )

    def update(
        self,
        key: str,
        update: Update,
        *,
        condition: Condition | None = None,
        return_new: bool = False,
        return_old_on_refusal: bool = False,
    ) -> WriteResult:
        p = Placeholders()
        kwargs = _expression_kwargs(
            p,
            UpdateExpression=update.render(p),
            ConditionExpression=condition.render(p) if condition else None,
        )
        if return_new:
            kwargs["ReturnValues"] = "ALL_NEW"
        if return_old_on_refusal:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return self._write(
            lambda: self.client.update_item(TableName=self.table_name, Key=_key(key), **kwargs),
            key,
            return_old_on_refusal,
        )

    def _write(self, call: Callable[[], dict[str, Any]], key: str, want_old: bool) -> WriteResult:
        """The one place a ConditionalCheckFailed turns into an answer (with the old item when asked)."""
        try:
            response = call()
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            if not want_old:
                return WriteResult(applied=False)
            old = exc.response.get("Item")
            if old:
                return WriteResult(applied=False, item=deserialize(old))
            # No item in the answer: there was none, or an emulator / old API version that does not return it.
            return WriteResult(applied=False, item=self.get(key, consistent=True))
        attributes = response.get("Attributes")
        return WriteResult(applied=True, item=deserialize(attributes) if attributes else None)

    # --- the status index and scans ----------------------------------------------------------------------------

    def _status_query(self, status: str, where: Condition | None) -> dict[str, Any]:
        p = Placeholders()
        key_condition = Compare(resources.STATUS_INDEX_PARTITION_KEY, "=", status).render(p)
        return {
            "TableName": self.table_name,
            "IndexName": resources.STATUS_INDEX_NAME,
            **_expression_kwargs(
                p, KeyConditionExpression=key_condition, FilterExpression=where.render(p) if where else None
            ),
        }

    def count_status(self, status: str, *, where: Condition | None) -> int:
        kwargs = self._status_query(status, where)
        kwargs["Select"] = "COUNT"
        return sum(int(page.get("Count", 0)) for page in self._pages("query", kwargs))

    def sum_status(self, status: str, attr: str, *, where: Condition | None) -> tuple[int, int]:
        kwargs = self._status_query(status, where)
        names = kwargs.setdefault("ExpressionAttributeNames", {})
        names["#sum_attr"] = attr
        kwargs["ProjectionExpression"] = "#sum_attr"
        count = total = 0
        for page in self._pages("query", kwargs):
            for item in page.get("Items", []):
                count += 1
                value = item.get(attr, {}).get("N")
                total += int(Decimal(value)) if value is not None else 0
        return count, total

    def query_status(self, status: str, *, where: Condition | None, oldest_first: bool, limit: int) -> list[Item]:
        kwargs = self._status_query(status, where)
        kwargs["ScanIndexForward"] = oldest_first
        items: list[Item] = []
        while len(items) < limit:
            # With a filter, Limit counts items read before filtering: read in pages and stop once enough matched.
            kwargs["Limit"] = 100 if where is not None else limit - len(items)
            response = self.client.query(**kwargs)
            items.extend(deserialize(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        return items[:limit]

    def scan(self, where: Condition) -> list[Item]:
        p = Placeholders()
        kwargs = {"TableName": self.table_name, **_expression_kwargs(p, FilterExpression=where.render(p))}
        return [deserialize(item) for page in self._pages("scan", kwargs) for item in page.get("Items", [])]

    def _pages(self, operation: str, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every page of a Query or Scan (boto3's paginator follows LastEvaluatedKey)."""
        return iter(self.client.get_paginator(operation).paginate(**kwargs))
