"""Mutual exclusion for the token refresh.

Why: GoPro may rotate refresh tokens; if five downloaders refreshed with the same token at once, all but one
could be refused and (with reuse detection) the whole grant revoked. So exactly one refreshes and the others
wait for the secret to change. Across Lambda containers the lock is a conditional item in the state table; it
expires on its own so a crashed holder cannot block refreshes for longer than its time to live.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import ClientError

from pipeline import resources
from pipeline.aws_errors import is_condition_failure


class RefreshLock(Protocol):
    def acquire(self, owner: str, ttl_seconds: float) -> bool: ...

    def release(self, owner: str) -> None: ...


class ThreadRefreshLock:
    """For one process (environment-variable credentials, the CLI): a plain lock with the same interface."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._guard = threading.Lock()
        self._owner: str | None = None
        self._expires = 0.0
        self._clock = clock

    def acquire(self, owner: str, ttl_seconds: float) -> bool:
        with self._guard:
            now = self._clock()
            if self._owner is not None and self._expires > now and self._owner != owner:
                return False
            self._owner, self._expires = owner, now + ttl_seconds
            return True

    def release(self, owner: str) -> None:
        with self._guard:
            if self._owner == owner:
                self._owner = None


class DynamoRefreshLock:
    """A lease item `lock#<name>` in the state table, taken with a conditional PutItem."""

    OWNER = "lock_owner"
    EXPIRES = "lock_expires_at"

    def __init__(self, client: Any, table: str, name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._key = {resources.TABLE_PARTITION_KEY: {"S": resources.lock_key(name)}}
        self._clock = clock

    def acquire(self, owner: str, ttl_seconds: float) -> bool:
        now = self._clock()
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **self._key,
                    self.OWNER: {"S": owner},
                    self.EXPIRES: {"N": f"{now + ttl_seconds:.3f}"},
                },
                ConditionExpression="attribute_not_exists(#pk) OR #exp < :now OR #owner = :owner",
                ExpressionAttributeNames={
                    "#pk": resources.TABLE_PARTITION_KEY,
                    "#exp": self.EXPIRES,
                    "#owner": self.OWNER,
                },
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def release(self, owner: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key,
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": self.OWNER},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
