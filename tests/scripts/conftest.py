"""A provisioned local stack (the `aws` moto server) for the operator scripts, and a way to run them in-process.

The resources are made the way the pipeline makes them: the table with `ensure_table`, the download queue with a
RedrivePolicy whose maxReceiveCount comes from `pipeline.resources`, names from `names_for(ENV)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline import resources
from pipeline.aws_clients import clear_client_cache
from pipeline.credentials.model import ProviderCredentials
from pipeline.providers.gopro.config import GoProEnv
from pipeline.state import StateStore, ensure_table
from scripts._common import Context, load_context
from tests.fixtures.aws import MotoStack

ENV = "dev"
NAMES = resources.names_for(ENV)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class LocalStack:
    aws: MotoStack
    queue_url: str = ""
    dlq_url: str = ""
    topic_arn: str = ""

    @property
    def names(self) -> resources.ResourceNames:
        return NAMES

    def args(self, *extra: str) -> list[str]:
        return [*extra, "--env", ENV, "--endpoint-url", self.aws.endpoint_url]

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    @property
    def state(self) -> StateStore:
        return StateStore(client=self.client("dynamodb"), table_name=NAMES.table, sleep=lambda _s: None)

    def context(self) -> Context:
        """The Context the commands build for these arguments (same cached boto3 clients)."""
        return load_context(SimpleNamespace(env=ENV, endpoint_url=self.aws.endpoint_url, region=None))

    def provision(self, *, queues: bool = True, table: bool = True) -> LocalStack:
        if table:
            ensure_table(self.client("dynamodb"), NAMES.table)
        if queues:
            sqs = self.client("sqs")
            self.dlq_url = sqs.create_queue(QueueName=NAMES.dead_letter_queue)["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.queue_url = sqs.create_queue(
                QueueName=NAMES.queue,
                Attributes={
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(resources.MAX_RECEIVE_COUNT)}
                    )
                },
            )["QueueUrl"]
        return self

    def put_secret(self, creds: ProviderCredentials) -> str:
        answer = self.client("secretsmanager").create_secret(
            Name=NAMES.credentials_secret, SecretString=creds.to_json()
        )
        return str(answer["VersionId"])

    def stored_credentials(self) -> ProviderCredentials:
        text = self.client("secretsmanager").get_secret_value(SecretId=NAMES.credentials_secret)["SecretString"]
        return ProviderCredentials.from_json(text)

    def drain(self, url: str, *, wait: int = 0) -> list[dict[str, Any]]:
        """Every visible message of a queue (received, then deleted)."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(message)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def stack(aws: MotoStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """A clean moto server, nothing provisioned yet; every script client is created afresh for the test."""
    for name in (
        GoProEnv.REFRESH_TOKEN,
        GoProEnv.ACCESS_TOKEN,
        GoProEnv.CLIENT_ID,
        GoProEnv.CLIENT_SECRET,
    ):
        monkeypatch.delenv(name, raising=False)
    clear_client_cache()
    yield LocalStack(aws)
    clear_client_cache()


@pytest.fixture
def run_script(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Runs the command of `module` (`scripts/_<name>.py`) the way `python scripts/<name>.py` does: its Click
    options, its one-line errors and exit codes, in this process."""
    from scripts.cli.app import run_as_script

    def call(module: Any, argv: Sequence[str]) -> Result:
        capsys.readouterr()
        code = run_as_script(module.NAME, list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call
