"""The GoPro cloud media library provider; registers itself as `gopro`, with its own settings."""

from pipeline.providers import registry
from pipeline.providers.gopro.api import NAME


def _factory(settings, gopro):  # type: ignore[no-untyped-def]
    from pipeline.credentials.factory import token_manager_for
    from pipeline.providers.gopro.provider import build

    return build(settings, token_manager_for(NAME), gopro=gopro)


def _options(environ):  # type: ignore[no-untyped-def]
    from pipeline.providers.gopro.config import GoProSettings

    return GoProSettings.from_env(environ)


registry.register(NAME, _factory, _options)
