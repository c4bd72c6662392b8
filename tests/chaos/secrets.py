"""Every log line a chaos test produces, captured as the pipeline writes it, and scanned for the secrets used.

Why capture through the pipeline's own formatter: in Lambda each line goes through `RedactingJsonFormatter`
(`pipeline.observability.logging`), so that is the text an operator (or an attacker with log access) reads. The
scan also covers whatever reached stdout/stderr (the metric lines, tracebacks printed by threads).

The secrets are the simulator's: its client secret and password, every access and refresh token it issued during
the test (rotated ones included), and the signatures of every pre-signed link it handed out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pipeline.observability.logging import ContextFilter, RedactingJsonFormatter

if TYPE_CHECKING:
    from devtools.gopro_simulator import GoProSimulator

# Levels as `configure_logging` leaves them in Lambda (the noisy libraries stay at WARNING).
NOISY = ("botocore", "boto3", "urllib3", "s3transfer", "aws_xray_sdk", "backoff", "werkzeug")


class LineCapture(logging.Handler):
    """A root handler keeping every formatted line (thread-safe: consumers and transfer threads all log)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.addFilter(ContextFilter())
        self.setFormatter(
            RedactingJsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
            )
        )
        self._lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken record must not hide the others
            line = f"<unformattable record from {record.name}>"
        with self._guard:
            self._lines.append(line)

    @property
    def lines(self) -> list[str]:
        with self._guard:
            return list(self._lines)

    def discard(self) -> None:
        """Forget what was captured (a test that leaks on purpose, to prove the scan works)."""
        with self._guard:
            self._lines.clear()


class CapturedLogs:
    """Installs a LineCapture on the root logger at INFO, and restores the previous levels afterwards."""

    def __init__(self, level: int = logging.INFO) -> None:
        self.handler = LineCapture()
        self._level = level
        self._saved: dict[str, int] = {}

    def __enter__(self) -> LineCapture:
        root = logging.getLogger()
        self._saved[""] = root.level
        root.setLevel(self._level)
        for name in NOISY:
            self._saved[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.WARNING)
        root.addHandler(self.handler)
        return self.handler

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        for name, level in self._saved.items():
            (root if name == "" else logging.getLogger(name)).setLevel(level)


def simulator_secrets(sim: GoProSimulator) -> set[str]:
    """Everything of the simulator's a log line must never show."""
    tokens = sim.tokens
    found = {tokens.client_secret, tokens.password, tokens.refresh_token, tokens.access_token}
    found.update(getattr(tokens, "_access", {}).keys())
    found.update(getattr(tokens, "_valid_refresh", set()))
    found.update(getattr(tokens, "_retired_refresh", set()))
    for request in sim.requests:
        found.update(request.query.get("Signature", []))
    return {secret for secret in found if secret and len(secret) >= 8}


def leaks(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """The texts (log lines, output chunks) that contain a secret, each cut to show where."""
    wanted = sorted(set(secrets), key=len, reverse=True)
    found = []
    for text in texts:
        for secret in wanted:
            at = text.find(secret)
            if at >= 0:
                found.append(f"...{text[max(0, at - 80) : at]}<SECRET>...")
                break
    return found
