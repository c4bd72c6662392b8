"""Where credentials live: Secrets Manager in AWS, memory for runs configured by environment variables."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from pipeline.aws_errors import RESOURCE_NOT_FOUND, error_code
from pipeline.credentials.model import CredentialsError, ProviderCredentials, SecretMissing


@dataclass(frozen=True)
class StoredCredentials:
    credentials: ProviderCredentials
    version: str


class CredentialStore(Protocol):
    def load(self) -> StoredCredentials: ...

    def save(self, credentials: ProviderCredentials) -> str:
        """Writes a new current version and returns its version id."""
        ...


class SecretsManagerStore:
    """The secret's AWSCURRENT version. Each save creates a new version (old ones stay for rollback)."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def load(self) -> StoredCredentials:
        try:
            answer = self._client.get_secret_value(SecretId=self._secret_id, VersionStage="AWSCURRENT")
        except ClientError as exc:
            if error_code(exc) == RESOURCE_NOT_FOUND:
                raise SecretMissing(
                    f"secret {self._secret_id!r} does not exist; run scripts/bootstrap_credentials.py"
                ) from None
            raise
        text = answer.get("SecretString")
        if not text:
            raise CredentialsError(f"secret {self._secret_id!r} has no string value")
        return StoredCredentials(ProviderCredentials.from_json(text), str(answer.get("VersionId", "")))

    def save(self, credentials: ProviderCredentials) -> str:
        answer = self._client.put_secret_value(SecretId=self._secret_id, SecretString=credentials.to_json())
        return str(answer.get("VersionId", ""))


class MemoryStore:
    """Credentials given through environment variables: refreshed tokens live as long as the process."""

    def __init__(self, credentials: ProviderCredentials) -> None:
        self._lock = threading.Lock()
        self._current = credentials
        self._version = 1

    def load(self) -> StoredCredentials:
        with self._lock:
            return StoredCredentials(self._current, str(self._version))

    def save(self, credentials: ProviderCredentials) -> str:
        with self._lock:
            self._current = credentials
            self._version += 1
            return str(self._version)
