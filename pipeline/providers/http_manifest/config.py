"""The provider's own settings, read from the environment when the registry builds it.

Why not in `pipeline.config.Settings`: a provider owns its options (as GoPro's do, in `providers/gopro/config.py`);
adding a provider touches nothing outside its package (and the registry's import line), and the variable names
live here, next to the only code that reads them. The registry reads them from the environment the pipeline's
settings were read from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.config import ConfigError
from pipeline.observability.redaction import register_secret


class ManifestEnv(StrEnum):
    URL = "HTTP_MANIFEST_URL"
    TOKEN = "HTTP_MANIFEST_TOKEN"  # optional: sent as a bearer token with manifest requests (never to media URLs)


@dataclass(frozen=True)
class HttpManifestConfig:
    manifest_url: str
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.manifest_url.startswith(("http://", "https://")):
            raise ConfigError(f"{ManifestEnv.URL} must be an http(s) URL")
        register_secret(self.token)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpManifestConfig:
        env = os.environ if environ is None else environ
        url = env.get(ManifestEnv.URL, "").strip()
        if not url:
            raise ConfigError(f"{ManifestEnv.URL} is not set (the http-manifest provider's manifest)")
        return cls(manifest_url=url, token=env.get(ManifestEnv.TOKEN) or None)
