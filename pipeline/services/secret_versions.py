"""The Secrets Manager side of a rotation: one secret's versions and stages, read and moved.

Why apart from the protocol (`pipeline.services.rotation`): these are the plain API calls, each a few lines
around one client call; the protocol decides when to make them, under which lock.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws_errors import RESOURCE_NOT_FOUND, error_code
from pipeline.credentials.model import CredentialsError, ProviderCredentials
from pipeline.errors import SyncError
from pipeline.observability.redaction import redact

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"


class RotationError(SyncError):
    """A step cannot go on. The message is for an operator and holds no secret value.

    `transient`: a later attempt may succeed by itself (the lock was busy, the provider was down).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(redact(message))
        self.transient = transient


class SecretVersions:
    """The Secrets Manager calls of the protocol, for one secret."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self.client = client
        self.secret_id = secret_id

    def describe(self) -> dict[str, Any]:
        return dict(self.client.describe_secret(SecretId=self.secret_id))

    def stages(self) -> dict[str, list[str]]:
        return dict(self.describe().get("VersionIdsToStages", {}))

    def current_version(self) -> str | None:
        return next((v for v, stages in self.stages().items() if AWSCURRENT in stages), None)

    def read(self, *, version_id: str | None = None, stage: str | None = None) -> tuple[dict[str, Any], str]:
        """(the JSON document, its version id); ResourceNotFoundException propagates."""
        kwargs: dict[str, Any] = {"SecretId": self.secret_id}
        if version_id:
            kwargs["VersionId"] = version_id
        if stage:
            kwargs["VersionStage"] = stage
        answer = self.client.get_secret_value(**kwargs)
        text = answer.get("SecretString") or ""
        try:
            document = json.loads(text)
        except ValueError:
            raise RotationError(f"secret {self.secret_id} version {answer.get('VersionId')} is not JSON") from None
        if not isinstance(document, dict):
            raise RotationError(f"secret {self.secret_id} must hold a JSON object")
        return document, str(answer.get("VersionId", ""))

    def pending_exists(self, token: str) -> bool:
        try:
            self.read(version_id=token, stage=AWSPENDING)
        except ClientError as exc:
            if error_code(exc) == RESOURCE_NOT_FOUND:
                return False
            raise
        return True

    def put_pending(self, token: str, document: dict[str, Any]) -> None:
        self.client.put_secret_value(
            SecretId=self.secret_id,
            ClientRequestToken=token,
            SecretString=json.dumps(document, sort_keys=True),
            VersionStages=[AWSPENDING],
        )

    def promote(self, token: str, current: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": self.secret_id, "VersionStage": AWSCURRENT, "MoveToVersionId": token}
        if current:
            kwargs["RemoveFromVersionId"] = current
        self.client.update_secret_version_stage(**kwargs)

    def drop_pending(self, token: str) -> None:
        self.client.update_secret_version_stage(
            SecretId=self.secret_id, VersionStage=AWSPENDING, RemoveFromVersionId=token
        )


def credentials_of(document: dict[str, Any]) -> ProviderCredentials:
    try:
        return ProviderCredentials.from_json(json.dumps(document))
    except CredentialsError as exc:
        raise RotationError(f"the stored credentials are unusable: {exc}") from None
