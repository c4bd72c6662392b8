import io
import json
import logging

import pytest

from pipeline.observability import correlation
from pipeline.observability.logging import configure_logging
from pipeline.observability.redaction import forget_all_secrets, redact, redact_url, register_secret
from pipeline.providers.errors import ProviderResponseError


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)
    forget_all_secrets()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_line_is_json_with_level_logger_and_message(captured: io.StringIO) -> None:
    logging.getLogger("pipeline.test").info("hello %s", "world", extra={"bytes": 5})
    (record,) = lines(captured)
    assert record["message"] == "hello world"
    assert record["level"] == "INFO"
    assert record["logger"] == "pipeline.test"
    assert record["bytes"] == 5
    assert "timestamp" in record


def test_context_fields_on_every_line_inside_a_unit_of_work(captured: io.StringIO) -> None:
    log = logging.getLogger("pipeline.test")
    log.info("before")
    with correlation.bind(correlation_id="c-1", run_id="r-1"), correlation.bind(media_id="m-1"):
        log.info("one")
        logging.getLogger("some.library").warning("two")
    log.info("after")
    before, one, two, after = lines(captured)
    assert "correlation_id" not in before
    for record in (one, two):
        assert (record["correlation_id"], record["run_id"], record["media_id"]) == ("c-1", "r-1", "m-1")
    assert "media_id" not in after


def test_a_registered_secret_never_reaches_a_line(captured: io.StringIO) -> None:
    token = "eyJhbGciOi.secret-access-token-value"
    register_secret(token)
    log = logging.getLogger("pipeline.test")
    log.info("token is %s", token)
    log.info("in extra", extra={"header": f"Bearer {token}"})
    try:
        raise RuntimeError(f"server said {token}")
    except RuntimeError:
        log.exception("failed")
    output = captured.getvalue()
    assert token not in output
    assert output.count("***") >= 3


def test_patterns_mask_secrets_never_registered(captured: io.StringIO) -> None:
    log = logging.getLogger("pipeline.test")
    log.warning('echo: {"access_token": "abc123zzz", "refresh_token":"def456yyy"}')
    log.warning("Authorization: Bearer qwerty.uiop-123")
    log.warning("url https://cdn.example/x.mp4?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA/foo")
    output = captured.getvalue()
    for leaked in ("abc123zzz", "def456yyy", "qwerty.uiop-123", "deadbeef", "AKIA/foo"):
        assert leaked not in output


def test_exception_messages_are_redacted_too() -> None:
    register_secret("refresh-token-known-1234")
    try:
        error = ProviderResponseError(
            "bad answer", status=500, body='{"error": "oops", "refresh_token": "refresh-token-known-1234"}'
        )
        assert "refresh-token-known-1234" not in str(error)
        assert "HTTP 500" in str(error)
    finally:
        forget_all_secrets()


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("synced GX010042.MP4 (3.2 GB) in 41 s") == "synced GX010042.MP4 (3.2 GB) in 41 s"


def test_redact_url_drops_the_signature() -> None:
    assert redact_url("https://h.example/a/b.mp4?Signature=x&Expires=1#frag") == "https://h.example/a/b.mp4"


def test_bind_refuses_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown context"), correlation.bind(colour="blue"):
        pass


def test_correlation_id_is_found_in_direct_and_eventbridge_events() -> None:
    assert correlation.correlation_id_from_event({"source": "aws.scheduler", "id": "evt-1"}) == "evt-1"
    assert correlation.correlation_id_from_event({"correlation_id": "x"}) == "x"
    assert correlation.correlation_id_from_event("garbage") is None
