"""LocalStack, started once per test session by the tests themselves, and boto3 clients pointed at it.

The virtualenv it runs from is built by `make localstack-setup` (a dependency of `make test`). When it is
missing the tests FAIL, naming that target: they are the ones that catch what moto lets through (a wrong
per-part CRC32C), so a silent skip would hide exactly the defects they exist for.

LocalStack's state is not reset between tests; each test makes its own uniquely named buckets and queues.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devtools import localstack
from tests.fixtures.aws import FAKE_CREDENTIALS, EmulatedAws

# The transfer tests' range-capable content server on 127.0.0.1, the same fixtures (one definition).
from tests.integration.transfer.conftest import _content_server_instance, content_server  # noqa: F401


@dataclass
class LocalStackAws(EmulatedAws):
    def s3(self) -> Any:
        return self.client("s3", s3={"addressing_style": "path"})

    def bucket(self, s3: Any) -> str:
        name = f"emulator-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        return name


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def _localstack_server() -> Iterator[localstack.LocalStackServer]:
    problem = ""
    try:
        server = localstack.start()
    except localstack.LocalStackUnavailable as exc:
        problem = str(exc)
    if problem:  # outside the except block, so the failure is one clear message, not a chained traceback
        pytest.fail(f"the emulator tests need LocalStack: {problem}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def localstack_aws(
    _localstack_server: localstack.LocalStackServer, monkeypatch: pytest.MonkeyPatch
) -> LocalStackAws:
    """The session's LocalStack, with fake credentials in the environment so no real account can be reached."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", _localstack_server.endpoint_url)
    return LocalStackAws(endpoint_url=_localstack_server.endpoint_url)
