from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.aws_clients import clear_client_cache, make_client
from pipeline.config import Settings


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    clear_client_cache()
    yield
    clear_client_cache()


def test_client_is_configured_and_reused() -> None:
    settings = Settings().with_overrides(aws_endpoint_url="http://127.0.0.1:1", aws_region="eu-central-1")

    client = make_client("dynamodb", settings)

    assert make_client("dynamodb", settings) is client
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    assert client.meta.region_name == "eu-central-1"
    config = client.meta.config
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == 5
    assert config.connect_timeout == 5.0
    assert config.read_timeout == 60.0


def test_different_settings_get_different_clients() -> None:
    local = Settings().with_overrides(aws_endpoint_url="http://127.0.0.1:1")
    aws = Settings()

    assert make_client("sqs", local) is not make_client("sqs", aws)
    assert make_client("sqs", aws).meta.endpoint_url.startswith("https://sqs.eu-west-1.")
    assert make_client("sqs", aws, max_attempts=2) is not make_client("sqs", aws)


def test_clear_cache_forgets_clients() -> None:
    settings = Settings()
    first = make_client("s3", settings)
    clear_client_cache()
    assert make_client("s3", settings) is not first
