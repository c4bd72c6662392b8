"""Maps provider names to factories, so handlers build a provider from settings without naming a class."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline.errors import SyncError
from pipeline.providers.base import CloudProvider

if TYPE_CHECKING:
    from pipeline.config import Settings

ProviderFactory = Callable[["Settings"], CloudProvider]

_factories: dict[str, ProviderFactory] = {}


class UnknownProvider(SyncError, KeyError):
    """No provider of that name is registered (a misconfigured `SYNC_PROVIDER` or a hostile message)."""

    pass


def register(name: str, factory: ProviderFactory) -> None:
    if name in _factories and _factories[name] is not factory:
        raise ValueError(f"provider {name!r} is already registered")
    _factories[name] = factory


def names() -> list[str]:
    _load_builtin()
    return sorted(_factories)


def create(name: str, settings: Settings) -> CloudProvider:
    _load_builtin()
    try:
        factory = _factories[name]
    except KeyError:
        raise UnknownProvider(f"unknown provider {name!r}; known: {', '.join(sorted(_factories))}") from None
    return factory(settings)


def _load_builtin() -> None:
    """Imports the built-in providers, whose modules register themselves on import."""
    import pipeline.providers.gopro
    import pipeline.providers.http_manifest  # noqa: F401
