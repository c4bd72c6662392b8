"""Making URLs and exception texts safe to log.

A pre-signed URL's query string (X-Amz-Signature, CloudFront Signature/Key-Pair-Id, tokens) is a bearer secret
for about an hour, so logs and error messages carry scheme, host, port and path only. Exceptions from
requests/urllib3 quote the request URL ("Max retries exceeded with url: /x?X-Amz-Signature=..."), so their texts go
through `redact_text` before they reach a message.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_QUERY_IN_TEXT = re.compile(r"\?[^\s'\"()<>]*")
_USERINFO_IN_TEXT = re.compile(r"(?<=://)[^/\s@]+@")


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
