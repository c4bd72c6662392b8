"""JSON log lines (python-json-logger) with the unit-of-work context and redaction applied to every record.

`configure_logging` is called once per process by each entry point (Lambda handler module, CLI, local runtime);
modules only ever call `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

from pythonjsonlogger.json import JsonFormatter

from pipeline.observability import correlation
from pipeline.observability.redaction import redact

_HANDLER_MARK = "_gopro_sync_handler"


class ContextFilter(logging.Filter):
    """Stamps correlation_id, run_id, media_id and provider from the current context onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in correlation.current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class RedactingJsonFormatter(JsonFormatter):
    """Formats as JSON, then masks secrets in the finished line.

    Redacting the final text (not only `msg`) also covers arguments, extra fields and tracebacks, which is where
    a token echoed in an exception would otherwise slip through.
    """

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Installs (or replaces) the pipeline's single JSON handler on the root logger; idempotent."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            root.removeHandler(existing)
    # Lambda's runtime pre-installs a plain-text handler; two handlers would print every line twice.
    for existing in list(root.handlers):
        if type(existing).__name__ == "LambdaLoggerHandler":
            root.removeHandler(existing)
    handler = logging.StreamHandler(stream or sys.stdout)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        RedactingJsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries stay at WARNING: their DEBUG lines echo request headers.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "aws_xray_sdk", "backoff", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return handler
