"""406/410 and an HTML 403 are told apart from an outage or a refused token (`raise_for_refusal`)."""

from __future__ import annotations

import pytest
import requests

from pipeline.providers.errors import ApiChanged, Blocked
from pipeline.providers.http_status import raise_for_refusal


def answer(status: int, body: str, content_type: str | None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    if content_type is not None:
        response.headers["Content-Type"] = content_type
    return response


@pytest.mark.parametrize("status", [406, 410])
def test_406_and_410_are_api_changed(status: int) -> None:
    with pytest.raises(ApiChanged, match=f"HTTP {status}") as caught:
        raise_for_refusal(answer(status, '{"error": "gone"}', "application/json"), "list media page 1", host="h")
    assert (caught.value.status, caught.value.transient) == (status, False)


@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8", None])
def test_an_html_403_is_blocked(content_type: str | None) -> None:
    with pytest.raises(Blocked):
        raise_for_refusal(answer(403, "<HTML><BODY>Request blocked.</BODY></HTML>", content_type), "w", host="h")


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (403, '{"error": "invalid_client"}', "application/json"),  # a JSON refusal is the token's business
        (403, "<html>…</html>", "application/json"),
        (401, "<html>…</html>", "text/html"),
        (500, "<html>…</html>", "text/html"),
        (200, "{}", "application/json"),
    ],
)
def test_anything_else_is_left_to_the_usual_mapping(status: int, body: str, content_type: str) -> None:
    raise_for_refusal(answer(status, body, content_type), "w", host="h")
