"""A state table on the moto server, provisioned from `table_definition` exactly as the local runtime does."""

from __future__ import annotations

from typing import Any

import pytest

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
