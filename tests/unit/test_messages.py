"""The download message schema: valid messages round-trip; any other input is a PoisonMessage, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.messages import (
    CORRELATION_ID_ATTRIBUTE,
    MAX_BODY_CHARS,
    MAX_ORIGINAL_FILENAME_CHARS,
    MAX_SIZE_BYTES,
    DownloadMessage,
    PoisonMessage,
    PoisonReason,
    fit_filename,
    parse,
)
from pipeline.sqs_delivery import correlation_id_from_attributes

VALID: dict[str, Any] = {
    "schema_version": 1,
    "run_id": "20240501T020000Z-4f2a",
    "correlation_id": "0b9c6a1e-3b1d-4d8a-9a55-6f1c2b7e9d10",
    "provider": "gopro",
    "media_id": "62NzWRrpPXm7o",
    "filename": "GX010042.MP4",
    "size": 1_048_576,
    "captured_at": "2024-04-30T10:15:00Z",
    "enqueued_at": "2024-05-01T02:00:03.125Z",
}


def body(**changes: Any) -> str:
    data = {**VALID, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def reason_of(text: Any) -> str:
    with pytest.raises(PoisonMessage) as info:
        parse(text)
    return info.value.reason


# --- the happy path --------------------------------------------------------------------------------------------


def test_valid_body_parses() -> None:
    message = parse(body())
    assert message == DownloadMessage(**VALID)
    assert message.size == 1_048_576


def test_to_json_is_compact_sorted_and_round_trips() -> None:
    message = DownloadMessage(**VALID)
    text = message.to_json()
    assert " " not in text.replace("GX010042.MP4", "")
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    assert parse(text) == message


def test_optional_fields_may_be_null_or_absent() -> None:
    assert parse(body(size=None, captured_at=None)).size is None
    assert parse(body(size=..., captured_at=...)).captured_at is None
    assert parse(body(media_type="timelapse_video")).media_type == "timelapse_video"


def test_unknown_extra_fields_are_ignored() -> None:
    assert parse(body(added_in_a_later_release={"x": 1})) == DownloadMessage(**VALID)


def test_message_attributes_carry_the_correlation_id() -> None:
    attributes = DownloadMessage(**VALID).message_attributes()
    assert attributes[CORRELATION_ID_ATTRIBUTE] == {"DataType": "String", "StringValue": VALID["correlation_id"]}
    lambda_shape = {CORRELATION_ID_ATTRIBUTE: {"stringValue": "corr-1", "dataType": "String"}}
    assert correlation_id_from_attributes(lambda_shape) == "corr-1"
    assert correlation_id_from_attributes(attributes) == VALID["correlation_id"]
    assert correlation_id_from_attributes(None) is None
    assert (
        correlation_id_from_attributes({CORRELATION_ID_ATTRIBUTE: {"stringValue": "a\nforged log line"}}) is None
    )
    assert correlation_id_from_attributes({CORRELATION_ID_ATTRIBUTE: "not a map"}) is None


def test_create_stamps_version_and_time_and_fits_long_filenames() -> None:
    message = DownloadMessage.create(
        run_id="r",
        correlation_id="c",
        provider="gopro",
        media_id="m",
        filename="a" * 5000 + ".MP4",
        now=datetime(2024, 5, 1, 2, 0, tzinfo=UTC),
    )
    assert message.schema_version == 1
    assert message.enqueued_at == "2024-05-01T02:00:00.000Z"
    assert len(message.filename) == MAX_ORIGINAL_FILENAME_CHARS
    assert message.filename.endswith(".MP4")
    assert fit_filename("short.mp4") == "short.mp4"
    assert len(fit_filename("b" * 5000)) == MAX_ORIGINAL_FILENAME_CHARS


def test_constructing_an_invalid_message_is_refused() -> None:
    with pytest.raises(PoisonMessage):
        DownloadMessage(**{**VALID, "media_id": "../etc"})


# --- poison, case by case --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", PoisonReason.NOT_JSON),
        ("not json", PoisonReason.NOT_JSON),
        ('{"schema_version": 1,', PoisonReason.NOT_JSON),
        ("NaN", PoisonReason.NOT_JSON),
        ('{"schema_version": 1, "schema_version": 1}', PoisonReason.NOT_JSON),
        ("[" * 5000 + "]" * 5000, PoisonReason.NOT_JSON),  # deeper than the parser's recursion limit
        ("[1, 2]", PoisonReason.NOT_OBJECT),
        ('"a string"', PoisonReason.NOT_OBJECT),
        ("null", PoisonReason.NOT_OBJECT),
        ("{}", PoisonReason.UNKNOWN_SCHEMA_VERSION),
        (body(schema_version=2), PoisonReason.UNKNOWN_SCHEMA_VERSION),
        (body(schema_version="1"), PoisonReason.UNKNOWN_SCHEMA_VERSION),
        (body(schema_version=True), PoisonReason.UNKNOWN_SCHEMA_VERSION),
        (body(schema_version=1.0), PoisonReason.UNKNOWN_SCHEMA_VERSION),
        ('{"schema_version": ' + "9" * 4000 + "}", PoisonReason.UNKNOWN_SCHEMA_VERSION),
        (body(media_id=...), PoisonReason.MISSING_FIELD),
        (body(run_id=...), PoisonReason.MISSING_FIELD),
        (body(enqueued_at=...), PoisonReason.MISSING_FIELD),
        (body(media_id=42), PoisonReason.WRONG_TYPE),
        (body(filename=None), PoisonReason.WRONG_TYPE),
        (body(size="10"), PoisonReason.WRONG_TYPE),
        (body(size=10.5), PoisonReason.WRONG_TYPE),
        (body(size=True), PoisonReason.WRONG_TYPE),
        (body(captured_at=20240501), PoisonReason.WRONG_TYPE),
        (body(size=-1), PoisonReason.INVALID_VALUE),
        (body(size=MAX_SIZE_BYTES + 1), PoisonReason.INVALID_VALUE),
        (body(media_id=""), PoisonReason.INVALID_VALUE),
        (body(media_id="../../etc/passwd"), PoisonReason.INVALID_VALUE),
        (body(media_id="abc def"), PoisonReason.INVALID_VALUE),
        (body(media_id="é"), PoisonReason.INVALID_VALUE),
        (body(media_id="a" * 129), PoisonReason.TOO_LONG),
        (body(provider="GoPro"), PoisonReason.INVALID_VALUE),
        (body(run_id="run\n2"), PoisonReason.INVALID_VALUE),
        (body(correlation_id="c" * 129), PoisonReason.TOO_LONG),
        (body(filename="f" * (MAX_ORIGINAL_FILENAME_CHARS + 1)), PoisonReason.TOO_LONG),
        (body(captured_at="yesterday"), PoisonReason.INVALID_VALUE),
        (body(enqueued_at="2024-13-45T00:00:00Z"), PoisonReason.INVALID_VALUE),
        (body(media_type="video/mp4"), PoisonReason.INVALID_VALUE),
        (" " * (MAX_BODY_CHARS + 1), PoisonReason.BODY_TOO_LARGE),
    ],
)
def test_poison_reasons(text: str, reason: str) -> None:
    assert reason_of(text) == reason


@pytest.mark.parametrize("value", [None, b'{"schema_version": 1}', 42, {"schema_version": 1}])
def test_a_body_that_is_not_text_is_poison(value: Any) -> None:
    assert reason_of(value) == PoisonReason.NOT_JSON


def test_poison_message_says_which_field() -> None:
    with pytest.raises(PoisonMessage, match="missing_field: media_id"):
        parse(body(media_id=...))


# --- properties ------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=30,
)


def parse_or_poison(text: Any) -> DownloadMessage | None:
    try:
        return parse(text)
    except PoisonMessage:
        return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_arbitrary_text_never_raises_anything_but_poison(text: str) -> None:
    parse_or_poison(text)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_poison(value: Any) -> None:
    parse_or_poison(json.dumps(value))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from([*VALID, "media_type", "extra"]),
        json_values | st.integers(min_value=-(2**70), max_value=2**70),
        max_size=12,
    )
)
def test_valid_messages_with_arbitrary_fields_replaced_never_crash(changes: dict[str, Any]) -> None:
    message = parse_or_poison(json.dumps({**VALID, **changes}))
    if message is not None:  # whatever got through must be within every cap and alphabet
        assert 0 <= (message.size or 0) <= MAX_SIZE_BYTES
        assert message.media_id.replace("_", "").replace("-", "").isalnum()
        assert message.media_id.isascii()


ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
tokens = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128)
timestamps = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat().replace("+00:00", "Z"))
valid_messages = st.builds(
    DownloadMessage,
    run_id=tokens,
    correlation_id=tokens,
    provider=st.from_regex(r"[a-z][a-z0-9-]{0,31}", fullmatch=True),
    media_id=st.text(alphabet=ID_ALPHABET, min_size=1, max_size=128),
    # Any unicode, including control characters and lone surrogates: JSON escapes them, SQS never sees them raw.
    filename=st.text(alphabet=st.characters(exclude_categories=()), max_size=MAX_ORIGINAL_FILENAME_CHARS),
    size=st.none() | st.integers(min_value=0, max_value=MAX_SIZE_BYTES),
    captured_at=st.none() | timestamps,
    enqueued_at=timestamps,
    media_type=st.none() | st.sampled_from(["video", "timelapse_video", "photo"]),
)


@settings(max_examples=200, deadline=None)
@given(valid_messages)
def test_valid_messages_round_trip(message: DownloadMessage) -> None:
    text = message.to_json()
    assert text.isascii()  # always within SQS's character set
    assert parse(text) == message


def test_filename_with_control_characters_and_a_lone_surrogate_round_trips() -> None:
    message = DownloadMessage(**{**VALID, "filename": "a/../b\x00\x1b[31m\ud800\u202e.mp4"})
    assert message.to_json().isascii()
    assert parse(message.to_json()) == message


def test_the_largest_valid_message_still_parses() -> None:
    quote_heavy = '"\\' * 42 + "x"  # printable ASCII that JSON must escape
    worst = DownloadMessage(
        **{
            **VALID,
            "run_id": quote_heavy,
            "correlation_id": quote_heavy,
            "media_id": "m" * 128,
            "provider": "p" * 32,
            "filename": "\U0001f3c4" * MAX_ORIGINAL_FILENAME_CHARS,
            "size": MAX_SIZE_BYTES,
            "captured_at": "2024-04-30T10:15:00.123456+14:00",
            "media_type": "t" * 32,
        }
    )
    assert len(worst.to_json()) <= MAX_BODY_CHARS
    assert parse(worst.to_json()) == worst


# --- the sidecar's listing facts (issue 14) ---------------------------------------------------------------------


def test_sidecar_facts_round_trip_and_a_body_without_them_still_parses() -> None:
    facts = {"camera_model": "HERO11 Black", "title": "Ridge", "duration_s": 61.5, "width": 3840, "height": 2160}
    message = parse(body(**facts, moments_count=2, uploaded_at="2024-04-30T12:00:00Z"))
    assert (message.camera_model, message.duration_s, message.moments_count) == ("HERO11 Black", 61.5, 2)
    assert parse(message.to_json()) == message
    assert parse(body()).camera_model is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"title": 7}, PoisonReason.WRONG_TYPE),
        ({"title": "x" * 513}, PoisonReason.TOO_LONG),
        ({"duration_s": -1}, PoisonReason.INVALID_VALUE),
        ({"width": True}, PoisonReason.WRONG_TYPE),
        ({"moments_count": 10**6}, PoisonReason.INVALID_VALUE),
        ({"uploaded_at": "yesterday"}, PoisonReason.INVALID_VALUE),
    ],
)
def test_a_parsed_body_with_an_impossible_sidecar_fact_is_poison(changes: dict[str, Any], reason: str) -> None:
    assert reason_of(body(**changes)) == reason
