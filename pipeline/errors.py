"""The root of the project's own errors, and the one word for "worth trying again".

Why one root: callers (the handlers, the command-line tool, the chaos suite) catch a family, never a list of
unrelated classes, as httpx's `_exceptions.py` does. Every error the project raises on purpose derives from
`SyncError`; anything else that escapes is a bug or a library's own error and is treated as such.

Why `transient` on the class (and optionally on the instance): whether retrying can help is a property of the
failure, decided where it is raised, not re-guessed by each caller. The downloader hands a non-transient failure
to the dead-letter queue at once and keeps SQS's receives for transient ones.
"""

from __future__ import annotations


class SyncError(Exception):
    """Any failure the project raises on purpose."""

    #: Trying again later may succeed (a timeout, a 5xx, throttling). Subclasses or instances override it.
    transient: bool = False


def is_transient(exc: BaseException) -> bool:
    """Whether a retry can help: the project's own errors say so; anything else is assumed not to."""
    return bool(getattr(exc, "transient", False)) if isinstance(exc, SyncError) else False
