"""Counts the AWS API calls the pipeline makes, with botocore's `before-call` event hook.

Why a hook on the clients and not a proxy: it counts API calls (one per operation, whatever botocore's retries
do underneath), it sees every service, and it needs no change to the pipeline. The pipeline's clients are cached
in `pipeline.aws_clients`; the counter hooks every cached client and the shared session, so clients created later
are counted too. Each call is recorded with its thread's name, so the local runtime's own polling (which stands
in for Lambda's event source mapping and the drain alarm) can be told apart from the pipeline's calls.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from pipeline import aws_clients


class AwsCallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.by_thread: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._hooked: set[int] = set()
        self.enabled = True
        self.hook()

    def hook(self) -> None:
        """Hook the clients cached so far and the session future clients copy their handlers from."""
        session = aws_clients._session
        if session is not None and id(session) not in self._hooked:
            session.events.register("before-call", self._count)
            self._hooked.add(id(session))
        for client in list(aws_clients._clients.values()):
            if id(client) not in self._hooked:
                client.meta.events.register("before-call", self._count)
                self._hooked.add(id(client))

    def _count(self, model: Any, **_: Any) -> None:
        if not self.enabled:
            return
        name = f"{model.service_model.service_name}.{model.name}"
        with self._lock:
            self.calls[name] += 1
            self.by_thread[(threading.current_thread().name, name)] += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.by_thread.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))
