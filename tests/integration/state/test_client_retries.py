"""Throughput errors are retried by botocore's standard mode (configured in `make_client`); refused conditions
are answers and are sent exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from pipeline.aws_clients import clear_client_cache, make_client
from pipeline.config import Settings
from pipeline.state import ClaimOutcome, StateStore, ensure_table
from tests.fixtures.aws import MotoStack

pytestmark = pytest.mark.integration

TABLE = "gopro-sync-tracker-retries"
T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class Throttler:
    """A `before-send` hook that answers the first `times` UpdateItem requests with a throughput error, as
    DynamoDB does under a hot partition, and counts every request actually attempted."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.sent = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        if self.sent > self.times:
            return None  # let it through to the moto server
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
        body += b'"message":"The level of configured provisioned throughput for the table was exceeded."}'
        headers = {
            "x-amzn-ErrorType": "ProvisionedThroughputExceededException",
            "Content-Type": "application/json",
        }
        return AWSResponse(request.url, 400, headers, _Body(body))


@pytest.fixture
def client(aws: MotoStack) -> Iterator[Any]:
    clear_client_cache()
    settings = Settings().with_overrides(aws_endpoint_url=aws.endpoint_url, aws_region=aws.region)
    dynamodb = make_client("dynamodb", settings, max_attempts=3)
    ensure_table(dynamodb, TABLE)
    yield dynamodb
    clear_client_cache()


def test_factory_client_retries_throughput_errors(client: Any) -> None:
    throttler = Throttler(times=2)
    client.meta.events.register("before-send.dynamodb.UpdateItem", throttler)
    store = StateStore(client, TABLE)

    result = store.media.claim("gopro", "m1", owner="w1", run_id="r", lease_seconds=60, now=T0)

    assert result.claimed
    assert throttler.sent == 3


def test_throughput_errors_that_outlast_the_retries_propagate(client: Any) -> None:
    throttler = Throttler(times=100)
    client.meta.events.register("before-send.dynamodb.UpdateItem", throttler)
    store = StateStore(client, TABLE)

    with pytest.raises(ClientError) as info:
        store.media.claim("gopro", "m1", owner="w1", run_id="r", lease_seconds=60, now=T0)

    assert info.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert throttler.sent == 3  # bounded by max_attempts


def test_refused_condition_is_not_retried(client: Any) -> None:
    store = StateStore(client, TABLE)
    assert store.media.claim("gopro", "m1", owner="w1", run_id="r", lease_seconds=60, now=T0)
    counter = Throttler(times=0)
    client.meta.events.register("before-send.dynamodb.UpdateItem", counter)

    result = store.media.claim("gopro", "m1", owner="w2", run_id="r", lease_seconds=60, now=T0)

    assert result.outcome is ClaimOutcome.LEASED_ELSEWHERE
    assert counter.sent == 1  # one request: the refusal came back with the item, no retry and no extra read
