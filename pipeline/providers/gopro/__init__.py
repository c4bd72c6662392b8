"""The GoPro cloud media library provider; registers itself as `gopro`."""

from pipeline.providers import registry
from pipeline.providers.gopro.api import NAME


def _factory(settings):  # type: ignore[no-untyped-def]
    from pipeline.credentials.factory import token_manager_for
    from pipeline.providers.gopro.provider import build

    return build(settings, token_manager_for(NAME))


registry.register(NAME, _factory)
