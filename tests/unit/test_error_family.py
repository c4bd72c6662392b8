"""Every error any module under `pipeline/` raises on purpose is a `SyncError` (one root, httpx's habit)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from pipeline.errors import SyncError, is_transient
from pipeline.providers.errors import (
    AuthError,
    MediaNotFound,
    ProviderResponseError,
    ProviderUnavailable,
    RateLimited,
    TransientResponseError,
)


def _all_modules() -> list[str]:
    """Every module of the package (its `__main__` runs the command line, so it is left out)."""
    import pipeline

    names = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")]
    return sorted(name for name in names if not name.endswith("__main__"))


MODULES = _all_modules()


def test_the_walk_finds_every_layer() -> None:
    assert {"pipeline.transfer.plan", "pipeline.state.models", "pipeline.services.listing_models"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_every_exception_class_defined_here_is_a_sync_error(name: str) -> None:
    module = importlib.import_module(name)
    own = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == name
    ]
    assert [cls.__name__ for cls in own if not issubclass(cls, SyncError)] == []


def test_callers_that_catch_value_error_still_can() -> None:
    from pipeline.config import ConfigError
    from pipeline.credentials.model import CredentialsError
    from pipeline.messages import PoisonMessage

    assert all(issubclass(cls, ValueError) for cls in (ConfigError, CredentialsError, PoisonMessage))


def test_transient_is_the_one_word() -> None:
    assert is_transient(RateLimited("x"))
    assert is_transient(ProviderUnavailable("x"))
    assert is_transient(TransientResponseError("x"))
    assert not is_transient(AuthError("x"))
    assert not is_transient(MediaNotFound("m1"))
    assert not is_transient(ProviderResponseError("x"))
    assert not hasattr(ProviderUnavailable("x"), "retryable")
