"""A state table on the moto server, provisioned from `table_definition` exactly as the local runtime does."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

from pipeline.state import StateStore, ensure_table
from tests.fixtures.aws import MotoStack

TABLE = "gopro-sync-tracker-test"


@pytest.fixture
def dynamodb(aws: MotoStack) -> Any:
    client = aws.client("dynamodb")
    ensure_table(client, TABLE)
    return client


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def store(dynamodb: Any, slept: list[float]) -> StateStore:
    return StateStore(client=dynamodb, table_name=TABLE, sleep=slept.append)


@pytest.fixture
def serialised_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto evaluate a condition and apply the write as one step, as DynamoDB does per item.

    moto checks the condition and then mutates the item without a lock, so two threads could in theory both pass
    the check; real DynamoDB serialises writes to one item. With this lock the race tests exercise what they mean
    to: that our condition expressions let exactly one writer win. (Without our conditions every thread wins.)
    """
    lock = threading.Lock()
    original = DynamoDBBackend.update_item

    def locked(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", locked)
