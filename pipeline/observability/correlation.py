"""Correlation ids and the unit-of-work context that every log line, metric and trace inherits.

Why contextvars: five downloader threads (and the local runtime's consumers) each work one media at a time;
a context variable keeps each thread's `media_id` on its own log lines without passing it through every call.
Flow: incoming event → `bind()` → log lines (ContextFilter) → SQS message attribute → X-Ray annotation.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

CONTEXT_FIELDS: tuple[str, ...] = ("correlation_id", "run_id", "media_id", "provider")
# The SQS message attribute that carries the correlation id next to the body.
CORRELATION_ATTRIBUTE = "correlation_id"

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("sync_context", default=_EMPTY)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def new_run_id(now_iso: str) -> str:
    """Run ids sort by time (the summary finds the latest run) and stay unique within one second."""
    stamp = now_iso.replace("-", "").replace(":", "").split(".")[0].rstrip("Z").replace("+0000", "")
    return f"{stamp}Z-{uuid.uuid4().hex[:8]}"


def current() -> dict[str, str]:
    """The fields bound in this context (a copy)."""
    return dict(_context.get())


def get(name: str) -> str | None:
    return _context.get().get(name)


@contextmanager
def bind(**fields: Any) -> Iterator[dict[str, str]]:
    """Adds fields to the context for the duration of the block; `None` values are ignored."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown context fields: {sorted(unknown)}")
    merged = dict(_context.get())
    merged.update({k: str(v) for k, v in fields.items() if v is not None})
    token = _context.set(merged)
    try:
        yield dict(merged)
    finally:
        _context.reset(token)


def correlation_id_from_event(event: Any) -> str | None:
    """Finds a correlation id an upstream step already chose: an explicit field, else the EventBridge event id.

    (SQS records carry theirs as a message attribute, read and validated by `pipeline.messages`.)
    """
    if not isinstance(event, Mapping):
        return None
    explicit = event.get("correlation_id")
    if isinstance(explicit, str) and explicit:
        return explicit
    if event.get("source") and isinstance(event.get("id"), str):
        return str(event["id"])
    return None
