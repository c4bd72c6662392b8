"""A generic HTTP media source: a JSON manifest lists the media, each with a plain download URL.

Registers itself as `http-manifest`. It proves the provider contract: nothing outside this package (and one import
line in the registry) knows it exists; the handlers build it by name from the message's `provider` field.
"""

from pipeline.providers import registry
from pipeline.providers.http_manifest.api import NAME


def _factory(settings, config):  # type: ignore[no-untyped-def]
    from pipeline.providers.http_manifest.provider import build

    return build(settings, config)


def _options(environ):  # type: ignore[no-untyped-def]
    from pipeline.providers.http_manifest.config import HttpManifestConfig

    return HttpManifestConfig.from_env(environ)


registry.register(NAME, _factory, _options)
