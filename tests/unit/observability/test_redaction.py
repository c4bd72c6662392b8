"""URLs and error texts never carry a pre-signed signature."""

from __future__ import annotations

import requests

from pipeline.observability.redaction import describe_exception, redact_text, redact_url

PRESIGNED = (
    "https://gopro-prod.s3.amazonaws.com/path/to/GX010042.MP4"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=deadbeef#frag"
)


def test_redact_url_keeps_scheme_host_port_and_path_only():
    assert redact_url(PRESIGNED) == "https://gopro-prod.s3.amazonaws.com/path/to/GX010042.MP4"
    assert redact_url("http://user:pw@127.0.0.1:8080/a/b?sig=1") == "http://127.0.0.1:8080/a/b"
    assert redact_url("https://[::1]:9000/x?y=z") == "https://[::1]:9000/x"
    assert redact_url("/relative/path?token=1") == "/relative/path"


def test_redact_text_scrubs_urls_inside_exception_messages():
    exc = requests.ConnectionError(
        "HTTPSConnectionPool(host='cdn.gopro.com', port=443): Max retries exceeded with url: "
        "/v1/x.mp4?Signature=abc&Key-Pair-Id=K1 (Caused by ...)"
    )
    text = describe_exception(exc)
    assert "Signature" not in text
    assert "Key-Pair-Id" not in text
    assert text.startswith("ConnectionError: ")
    assert "/v1/x.mp4?<redacted>" in text
    assert redact_text("see https://u:p@host/x") == "see https://host/x"
