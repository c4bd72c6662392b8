"""The composition root: the only place services are built, from collaborators built once per process.

Why: a warm Lambda container serves many invocations; clients, the provider's HTTP session and its token cache
are built on first use and reused. Services (`listing()`, `summary()`, `rotation()`) are cheap to build and are
built per call from those collaborators, so a service never outlives the settings it was built with. Handlers
and the local runtime get everything from here.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from pipeline import resources
from pipeline.aws_clients import make_client
from pipeline.config import ConfigError, Settings
from pipeline.credentials.factory import store_for
from pipeline.observability.logging import configure_logging
from pipeline.observability.metrics import MetricsEmitter
from pipeline.observability.tracing import Tracer
from pipeline.providers import registry
from pipeline.providers.base import CloudProvider
from pipeline.providers.gopro.config import GoProSettings
from pipeline.services.listing import ListingService
from pipeline.services.rotation import Notifier, RotationService, provider_hooks
from pipeline.services.summary import SummaryService
from pipeline.state import StateStore

if TYPE_CHECKING:
    from pipeline.services.downloader import Downloader
    from pipeline.services.night_plan import NightPlanner
    from pipeline.services.restore_completed import RestoreCompletedService


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

    # --- services ----------------------------------------------------------------------------------------------

    def summary(self) -> SummaryService:
        return SummaryService(
            settings=self.settings,
            state=self.state,
            sns=self.client("sns"),
            sqs=self.client("sqs"),
            metrics=self.metrics,
        )

    def listing(self) -> ListingService:
        return ListingService(
            settings=self.settings,
            provider=self.provider(),
            state=self.state,
            sqs=self.client("sqs"),
            metrics=self.metrics,
            summary=self.summary(),
            tracer=self.tracer,
            lambda_client=self.client("lambda"),
        )

    def night_planner(self) -> NightPlanner:
        """What tonight's listing would do, without doing it (the `plan` command)."""
        from pipeline.services.night_plan import NightPlanner

        return NightPlanner(settings=self.settings, provider=self.provider(), state=self.state)

    def rotation(self) -> RotationService:
        if GoProSettings.of(self.settings).credentials_override.present:
            raise ConfigError("rotation works on the Secrets Manager secret; unset the GOPRO_* token variables")
        _store, lock, _ = store_for(self.settings)  # the very lock the downloaders take before a refresh
        settings = self.settings
        return RotationService(
            secrets=self.client("secretsmanager"),
            lock=lock,
            hooks=lambda: provider_hooks(settings),
            metrics=self.metrics,
            notifier=Notifier(self.client("sns"), settings.topic_arn, settings.environment),
        )

    def restore_completed(self) -> RestoreCompletedService:
        from pipeline.services.restore_completed import RestoreCompletedService
        from pipeline.services.restore_ledger import RestoreLedger

        return RestoreCompletedService(
            ledger=RestoreLedger(self.client("dynamodb"), self.settings.table_name),
            sns=self.client("sns"),
            topic_arn=self.settings.topic_arn,
            environment=self.settings.environment,
        )

    def downloader(self) -> Downloader:
        """The downloader service over this App's clients, state store and provider registry."""
        from pipeline.services.downloader import Downloader
        from pipeline.services.sidecar import SidecarWriter
        from pipeline.transfer.archive import S3FileTransfer

        return Downloader(
            settings=self.settings,
            provider_for=self.provider,
            state=self.state,
            sqs=self.client("sqs"),
            transfer=S3FileTransfer.from_settings(self.settings, self.client("s3")),
            metrics=self.metrics,
            sidecars=SidecarWriter(self.client("s3"), self.settings.bucket_name),
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


def forget_current_app() -> None:
    """Drop the process-wide App, so the next `current_app()` builds a new one from the environment.

    Lambda never needs this (one container, one deployment). A host process that stands in for one deployment
    after another does: the local runtime starts a fresh stack per run, each a cold start.
    """
    global _app
    with _app_lock:
        _app = None
