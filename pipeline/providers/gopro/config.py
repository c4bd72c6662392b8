"""The GoPro provider's own settings, read from the environment the pipeline's settings were read from.

Why here and not in `pipeline.config.Settings`: a provider owns its options (rclone's backends register a name, a
constructor and an options struct; nothing outside the backend's folder knows them). The variable names are
unchanged (the CDK stack, the simulator and the docs set them); only where they are read has moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.config import ConfigError, Settings
from pipeline.credentials.model import ProviderCredentialsOverride

DEFAULT_URL = "https://api.gopro.com"


class GoProEnv(StrEnum):
    """Names of the environment variables the GoPro provider reads."""

    API_URL = "GOPRO_API_URL"
    AUTH_URL = "GOPRO_AUTH_URL"
    CLIENT_ID = "GOPRO_CLIENT_ID"
    CLIENT_SECRET = "GOPRO_CLIENT_SECRET"
    REFRESH_TOKEN = "GOPRO_REFRESH_TOKEN"
    ACCESS_TOKEN = "GOPRO_ACCESS_TOKEN"
    # What to archive besides camera videos (the deployment's `archive.edits` / `archive.raw`).
    INCLUDE_EDITS = "INCLUDE_EDITS"
    INCLUDE_RAW = "INCLUDE_RAW"


#: The variables that carry credentials (they take precedence over the stored secret when present).
CREDENTIAL_VARIABLES = (GoProEnv.CLIENT_ID, GoProEnv.CLIENT_SECRET, GoProEnv.REFRESH_TOKEN, GoProEnv.ACCESS_TOKEN)


@dataclass(frozen=True)
class GoProSettings:
    api_url: str = DEFAULT_URL
    auth_url: str = DEFAULT_URL
    # Edits made in the app (MultiClipEdit, Edit) are archived from their `baked_source` render unless turned off.
    include_edits: bool = True
    # RAW sidecars (`raw_photo`, .gpr) beside their photo, when photos are included.
    include_raw: bool = False
    # Credentials given through the environment; kept out of `repr` by the override itself.
    credentials_override: ProviderCredentialsOverride = field(default_factory=ProviderCredentialsOverride)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GoProSettings:
        return cls(
            api_url=_url(environ, GoProEnv.API_URL),
            auth_url=_url(environ, GoProEnv.AUTH_URL),
            include_edits=_flag(environ, GoProEnv.INCLUDE_EDITS, default=cls.include_edits),
            include_raw=_flag(environ, GoProEnv.INCLUDE_RAW, default=cls.include_raw),
            credentials_override=ProviderCredentialsOverride(
                client_id=environ.get(GoProEnv.CLIENT_ID) or None,
                client_secret=environ.get(GoProEnv.CLIENT_SECRET) or None,
                refresh_token=environ.get(GoProEnv.REFRESH_TOKEN) or None,
                access_token=environ.get(GoProEnv.ACCESS_TOKEN) or None,
            ),
        )

    @classmethod
    def of(cls, settings: Settings) -> GoProSettings:
        """The GoPro settings of the environment `settings` were read from."""
        return cls.from_env(settings.environ())


def _url(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or DEFAULT_URL).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {env.get(name)!r}")
