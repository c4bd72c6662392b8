"""Maps provider names to how each is built, so handlers build a provider from settings without naming a class.

rclone's registry habit: a provider registers its name, its constructor and how to read its own options; the
global `Settings` carries only what is the pipeline's own (and the environment it was read from), and the
provider's options are read from that same environment when it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import SyncError
from pipeline.providers.base import CloudProvider

if TYPE_CHECKING:
    from pipeline.config import Settings

#: Builds a provider from the pipeline's settings and the provider's own options.
ProviderFactory = Callable[["Settings", Any], CloudProvider]
#: Reads a provider's own options from an environment (raising ConfigError for a bad one).
OptionsReader = Callable[[Mapping[str, str]], Any]


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    factory: ProviderFactory
    options: OptionsReader


_specs: dict[str, ProviderSpec] = {}


class UnknownProvider(SyncError, KeyError):
    """No provider of that name is registered (a misconfigured `SYNC_PROVIDER` or a hostile message)."""


def register(name: str, factory: ProviderFactory, options: OptionsReader) -> None:
    spec = ProviderSpec(name, factory, options)
    if name in _specs and _specs[name] != spec:
        raise ValueError(f"provider {name!r} is already registered")
    _specs[name] = spec


def names() -> list[str]:
    _load_builtin()
    return sorted(_specs)


def spec(name: str) -> ProviderSpec:
    _load_builtin()
    try:
        return _specs[name]
    except KeyError:
        raise UnknownProvider(f"unknown provider {name!r}; known: {', '.join(sorted(_specs))}") from None


def create(name: str, settings: Settings) -> CloudProvider:
    found = spec(name)
    return found.factory(settings, found.options(settings.environ()))


def _load_builtin() -> None:
    """Imports the built-in providers, whose modules register themselves on import."""
    import pipeline.providers.gopro
    import pipeline.providers.http_manifest  # noqa: F401
