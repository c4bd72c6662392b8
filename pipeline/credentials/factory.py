"""Chooses where a provider's credentials live, from settings.

Environment variables (`GOPRO_REFRESH_TOKEN`/`GOPRO_ACCESS_TOKEN` …) win, for first try-outs and the CLI without
AWS; otherwise the Secrets Manager secret, with the refresh lock in the state table so concurrent Lambda
containers refresh once.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.config import Settings
from pipeline.credentials.lock import DynamoRefreshLock, RefreshLock, ThreadRefreshLock
from pipeline.credentials.model import ProviderCredentials
from pipeline.credentials.store import CredentialStore, MemoryStore, SecretsManagerStore
from pipeline.credentials.tokens import Refresher, TokenManager


def store_for(settings: Settings) -> tuple[CredentialStore, RefreshLock, str]:
    """(store, lock, description) for the configured credential source.

    Only GoPro has credentials today, so the override is GoPro's (its settings read the GOPRO_* variables).
    """
    from pipeline.providers.gopro.config import GoProSettings

    override = GoProSettings.of(settings).credentials_override
    if override.present:
        creds = ProviderCredentials(
            access_token=override.access_token,
            refresh_token=override.refresh_token,
            client_id=override.client_id,
            client_secret=override.client_secret,
        )
        return MemoryStore(creds), ThreadRefreshLock(), "environment variables"
    from pipeline.aws_clients import make_client

    store = SecretsManagerStore(make_client("secretsmanager", settings), settings.credentials_secret_id)
    lock = DynamoRefreshLock(
        make_client("dynamodb", settings), settings.table_name, f"credentials-refresh-{settings.provider}"
    )
    return store, lock, f"secret {settings.credentials_secret_id}"


def token_manager_for(provider: str) -> Callable[[Settings, Refresher], TokenManager]:
    def factory(settings: Settings, refresher: Refresher) -> TokenManager:
        store, lock, _ = store_for(settings)
        return TokenManager(store, lock, refresher, environment=settings.environment)

    return factory
