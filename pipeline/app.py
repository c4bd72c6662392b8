"""The composition root: builds each collaborator once per process from settings.

Why: a warm Lambda container serves many invocations; clients, the provider's HTTP session and its token cache
are built on first use and reused. Handlers and the local runtime get everything from here, tests build the
services directly with their own collaborators.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from pipeline import resources
from pipeline.aws_clients import make_client
from pipeline.config import Settings
from pipeline.observability.logging import configure_logging
from pipeline.observability.metrics import MetricsEmitter
from pipeline.observability.tracing import Tracer
from pipeline.providers import registry
from pipeline.providers.base import CloudProvider
from pipeline.state.store import StateStore

if TYPE_CHECKING:
    from pipeline.services.downloader import Downloader


class App:
    def __init__(self, settings: Settings, *, metrics_stream: IO[str] | None = None) -> None:
        self.settings = settings
        self._metrics_stream = metrics_stream  # None: stdout, where Lambda's log agent reads EMF
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> App:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        return cls(settings)

    @cached_property
    def metrics(self) -> MetricsEmitter:
        return MetricsEmitter(
            self.settings.metrics_namespace,
            {
                resources.METRIC_DIMENSION_ENVIRONMENT: self.settings.environment,
                resources.METRIC_DIMENSION_PROVIDER: self.settings.provider,
            },
            stream=self._metrics_stream,
        )

    @cached_property
    def tracer(self) -> Tracer:
        return Tracer(self.settings.tracing_enabled)

    @cached_property
    def state(self) -> StateStore:
        return StateStore.from_settings(self.settings)

    def client(self, service: str) -> Any:
        return make_client(service, self.settings)

    def provider(self, name: str | None = None) -> CloudProvider:
        """One provider instance per name per process (it caches its token and connection pool)."""
        wanted = name or self.settings.provider
        with self._lock:
            cache: dict[str, CloudProvider] = self.__dict__.setdefault("_providers", {})
            if wanted not in cache:
                cache[wanted] = registry.create(wanted, self.settings)
            return cache[wanted]

    def downloader(self) -> Downloader:
        """The downloader service over this App's clients, state store and provider registry."""
        from pipeline.services.downloader import Downloader
        from pipeline.transfer.archive import S3FileTransfer

        return Downloader(
            settings=self.settings,
            provider_for=self.provider,
            state=self.state,
            sqs=self.client("sqs"),
            transfer=S3FileTransfer.from_settings(self.settings, self.client("s3")),
            metrics=self.metrics,
        )


_app: App | None = None
_app_lock = threading.Lock()


def current_app() -> App:
    """The process-wide App (built on the first invocation of a container)."""
    global _app
    with _app_lock:
        if _app is None:
            _app = App.from_env()
        return _app


def set_app(app: App | None) -> None:
    """For the local runtime and tests: use this App instead of one built from the environment."""
    global _app
    with _app_lock:
        _app = app
