"""A downloader killed at a chosen step, as Lambda kills an invocation (timeout, out of memory, host lost).

How a kill is emulated: at the armed point a `Killed` (a BaseException, so no `except Exception` in the pipeline
catches it) is raised, and from that moment the "process" is dead: every later AWS call it would make (S3,
DynamoDB, SQS sends, Secrets Manager) raises `Killed` too, before reaching the server. So nothing the pipeline
would do in a `finally` or an error path (aborting the upload, releasing the lease, recording the failure) ever
happens, just as in a real kill. The wrapped handler then reports every record of the event as not acknowledged,
and the local consumer makes them visible again at once: the queue's visibility timeout has passed.

The dead flag is process-wide, so kill scenarios run one consumer (one invocation at a time), which is exact.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.aws_faults import api_params, stash_params

# The steps of one download where a kill is interesting (in the order they happen).
AFTER_CLAIM = "after the claim"
MID_PART = "mid-part (UploadPart 2)"
AFTER_UPLOAD_COMPLETE = "after CompleteMultipartUpload, before the state update"
AFTER_STATE_COMPLETE = "after the state update, before the SQS delete"
BEFORE_DELETE = "after the handler returned, before the SQS delete"
AFTER_CHECKPOINT = "after saving a deadline checkpoint, before re-enqueueing"
AFTER_CONTINUATION = "after re-enqueueing a continuation, before the SQS delete"
KILL_POINTS = (
    AFTER_CLAIM,
    MID_PART,
    AFTER_UPLOAD_COMPLETE,
    AFTER_STATE_COMPLETE,
    BEFORE_DELETE,
    AFTER_CHECKPOINT,
    AFTER_CONTINUATION,
)
# A kill deep into a long transfer (many parts already in S3): the crash-safety scenarios' own point, kept out of
# KILL_POINTS (the randomised nights' choices) because it needs a video of more than MID_TRANSFER_PART parts.
MID_TRANSFER_PART = 20
MID_TRANSFER = f"mid-transfer (UploadPart {MID_TRANSFER_PART})"
# SQS calls the *local runtime* makes (polling, drain detection, acknowledging): never the dead invocation's.
_RUNTIME_SQS = {"ReceiveMessage", "GetQueueAttributes", "DeleteMessage", "ChangeMessageVisibility"}
_CONTINUATION_ATTRIBUTE = "continuations"


class Killed(BaseException):
    """The invocation was killed; not an Exception, so the pipeline's own error handling never sees it."""


@dataclass
class Invocation:
    number: int
    media_ids: tuple[str, ...]
    killed_at: str | None = None


@dataclass
class _Arming:
    point: str
    media_id: str | None
    times: int


@dataclass
class KillSwitch:
    """Arms kill points and emulates the process death; `invocations` says which ones were killed, where."""

    invocations: list[Invocation] = field(default_factory=list)
    kills: list[tuple[str, str | None]] = field(default_factory=list)
    _armed: list[_Arming] = field(default_factory=list)
    _dead: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    def arm(self, point: str, *, media_id: str | None = None, times: int = 1) -> None:
        if point not in (*KILL_POINTS, MID_TRANSFER):
            raise ValueError(f"unknown kill point {point!r}")
        with self._lock:
            self._armed.append(_Arming(point, media_id, times))

    def disarm(self) -> None:
        with self._lock:
            self._armed.clear()

    @property
    def current(self) -> Invocation | None:
        """The invocation the calling consumer thread runs (None in transfer pool threads and the harness)."""
        return getattr(self._local, "invocation", None)

    # --- installation --------------------------------------------------------------------------------------

    def install(self, app: Any, client_for: Callable[[str], Any]) -> None:
        """Hook the pipeline's clients and state store (call once per pipeline)."""
        for service in ("s3", "dynamodb", "sqs", "secretsmanager", "sns"):
            client = client_for(service)
            stash_params(client)
            client.meta.events.register(f"before-call.{service}", self._refuse_when_dead)
        s3 = client_for("s3")
        s3.meta.events.register("before-call.s3.UploadPart", self._upload_part)
        s3.meta.events.register("after-call.s3.CompleteMultipartUpload", self._upload_completed)
        s3.meta.events.register("after-call.s3.PutObject", self._upload_completed)
        client_for("sqs").meta.events.register("after-call.sqs.SendMessage", self._message_sent)
        state = app.state
        state.media.claim = self._after(state.media.claim, AFTER_CLAIM, lambda result: bool(result))
        state.media.complete = self._after(state.media.complete, AFTER_STATE_COMPLETE, lambda result: bool(result))
        state.media.save_checkpoint = self._after(
            state.media.save_checkpoint, AFTER_CHECKPOINT, lambda result: bool(result) and _at_the_deadline()
        )

    def wrap_handler(self, handler: Callable[[Any, Any], dict[str, Any]]) -> Callable[[Any, Any], dict[str, Any]]:
        """The downloader's Lambda handler as a killable invocation (patched into the local runtime's consumer)."""

        def invocation(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
            records = [r for r in event.get("Records", []) if isinstance(r, Mapping)]
            current = Invocation(len(self.invocations) + 1, tuple(_media_of_record(r) for r in records))
            with self._lock:
                self.invocations.append(current)
            self._local.invocation = current
            try:
                response = handler(event, context)
                for media_id in current.media_ids:
                    self._fire(BEFORE_DELETE, media_id)
                return response
            except Killed as killed:
                current.killed_at = str(killed)
                return {"batchItemFailures": [{"itemIdentifier": str(r.get("messageId"))} for r in records]}
            finally:
                self._dead.clear()
                self._local.invocation = None

        return invocation

    # --- kill points ---------------------------------------------------------------------------------------

    def _fire(self, point: str, media_id: str | None) -> None:
        with self._lock:
            for arming in self._armed:
                if arming.point == point and arming.times > 0 and arming.media_id in (None, media_id):
                    arming.times -= 1
                    break
            else:
                return
            self.kills.append((point, media_id))
        self._dead.set()
        raise Killed(point)

    def _after(self, method: Callable[..., Any], point: str, applied: Callable[[Any], bool]) -> Callable[..., Any]:
        def wrapper(provider: str, media_id: str, *args: Any, **kwargs: Any) -> Any:
            result = method(provider, media_id, *args, **kwargs)
            if applied(result):
                self._fire(point, media_id)
            return result

        return wrapper

    def _refuse_when_dead(self, model: Any, **_: Any) -> None:
        if self._dead.is_set() and model.name not in _RUNTIME_SQS:
            raise Killed(f"dead process calling {model.name}")

    def _upload_part(self, context: dict[str, Any], **_: Any) -> None:
        params = api_params(context)
        if params.get("PartNumber") == 2:
            self._fire(MID_PART, _media_of_key(str(params.get("Key", ""))))
        elif params.get("PartNumber") == MID_TRANSFER_PART:
            self._fire(MID_TRANSFER, _media_of_key(str(params.get("Key", ""))))

    def _upload_completed(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        if getattr(http_response, "status_code", 500) < 300:
            self._fire(AFTER_UPLOAD_COMPLETE, _media_of_key(str(api_params(context).get("Key", ""))))

    def _message_sent(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        params = api_params(context)
        if _CONTINUATION_ATTRIBUTE in (params.get("MessageAttributes") or {}):
            self._fire(AFTER_CONTINUATION, _media_of_body(params.get("MessageBody")))


def _at_the_deadline() -> bool:
    """Whether the checkpoint being saved is the deadline's (the transfer's `stop_for_deadline` is on the stack),
    not one of the progress checkpoints a transfer saves as it goes: AFTER_CHECKPOINT is the deadline handover."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "stop_for_deadline":
            return True
        frame = frame.f_back
    return False


def _media_of_key(key: str) -> str | None:
    """`gopro/2025/06/01/<media_id>/<file>` -> media id."""
    parts = key.split("/")
    return parts[-2] if len(parts) >= 2 else None


def _media_of_body(body: Any) -> str | None:
    """The media id a body names, if any (hostile bodies included: never raises)."""
    try:
        value = json.loads(body).get("media_id")
    except Exception:  # anything: not JSON, too deep (RecursionError), not an object
        return None
    return value if isinstance(value, str) else None


def _media_of_record(record: Mapping[str, Any]) -> str:
    return _media_of_body(record.get("body")) or "?"
