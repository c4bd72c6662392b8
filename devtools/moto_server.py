"""The moto server every local stack here runs, with DynamoDB's one guarantee moto's threaded server lacks.

Why: moto's `ThreadedMotoServer` answers each request on its own thread, and its DynamoDB backend checks a
write's condition and applies the write as two steps, so two concurrent conditional updates of one item can both
pass (three downloaders claimed the same medium at once in `test_a_duplicated_message_uploads_once`). Real
DynamoDB applies each conditional write atomically, and the pipeline's claim and queued-mark rely on exactly that.
This server serialises the DynamoDB requests (one at a time, as one item's writes are in DynamoDB) and leaves
every other service concurrent, so S3 uploads and SQS polls run in parallel as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, MotoRequestHandler, ThreadedMotoServer, create_backend_app
from werkzeug.serving import make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
DYNAMODB_TARGET_PREFIX = "DynamoDB_"  # the X-Amz-Target of every DynamoDB API call (DynamoDB_20120810.UpdateItem)


def serialise_dynamodb(app: WsgiApp) -> WsgiApp:
    """`app`, with DynamoDB requests answered one at a time (the body read inside the lock, so the write is
    done when the lock is released)."""
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(DYNAMODB_TARGET_PREFIX):
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))

    return wrapped


class AtomicMotoServer(ThreadedMotoServer):
    """A `ThreadedMotoServer` whose DynamoDB conditional writes are atomic, as DynamoDB's are."""

    def _server_entry(self) -> None:
        app = serialise_dynamodb(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()
