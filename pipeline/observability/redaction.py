"""Keeps tokens, secrets and signed URLs out of log lines and exception messages: the project's one redactor.

Two layers, because either alone leaks: known secret values (registered the moment credentials are loaded) are
replaced wherever they appear, and patterns catch shapes of secrets we never saw (a bearer header in an echoed
request, a token field in an error body, a pre-signed URL's signature).

URLs get their own treatment: a pre-signed URL's query string (X-Amz-Signature, CloudFront Signature/Key-Pair-Id,
tokens) is a bearer secret for about an hour, so logs and error messages carry scheme, host, port and path only
(`redact_url`). Exceptions from requests/urllib3 quote the request URL ("Max retries exceeded with url:
/x?X-Amz-Signature=..."), so their texts go through `redact_text` before they reach a message.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Real tokens and client secrets are long (JWTs, 64 hex characters); below this a "secret" is more likely a
# test value or an ordinary word, and masking every occurrence of it would garble unrelated log lines.
_MIN_SECRET_LENGTH = 8

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Authorization: Bearer abc / Bearer abc
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    # "access_token": "..." / access_token=... / refresh_token: ...
    re.compile(
        r"(?i)((?:\\?\")?(?:access_token|refresh_token|id_token|client_secret|password|secret|token|"
        r"gp_access_token|authorization|cookie|x-amz-security-token|x-amz-signature|x-amz-credential|signature|"
        r"key-pair-id|policy)(?:\\?\")?\s*[:=]\s*(?:\\?\")?)([^\"\\&\s,;}]+)"
    ),
)

_QUERY_IN_TEXT = re.compile(r"\?[^\s'\"()<>]*")
_USERINFO_IN_TEXT = re.compile(r"(?<=://)[^/\s@]+@")

_lock = threading.Lock()
_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remembers a secret value so that it is masked wherever it appears later, in any thread."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _known.add(value)


def forget_all_secrets() -> None:
    """For tests: start from a clean registry."""
    with _lock:
        _known.clear()


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _PATTERNS[1].sub(lambda m: f"{m.group(1)}{MASK}", text)


def redact_url(url: str) -> str:
    """`scheme://host[:port]/path` of `url`: query, fragment and any user:password dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme and not host:
        return _QUERY_IN_TEXT.sub("", url.split("#", 1)[0])
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_text(text: str) -> str:
    """`text` with every query string and URL credentials replaced, for exception messages of HTTP libraries."""
    return _USERINFO_IN_TEXT.sub("", _QUERY_IN_TEXT.sub("?<redacted>", text))


def describe_exception(exc: BaseException) -> str:
    """`TypeName: message` with secrets removed; what the engine puts in its own errors instead of chaining."""
    message = redact_text(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
