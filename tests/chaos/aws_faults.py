"""AWS faults injected at the botocore level, in front of the real moto server.

Why two layers: a fault in the *send* layer (`before-send`) replaces one HTTP answer, so botocore's own standard
retry mode sees it and retries, exactly as it would a real `SlowDown` or throttling error; a fault in the *call*
layer (`before-call`) replaces the whole API call's answer, i.e. what our code sees once botocore's retries are
spent. Faults apply to the pipeline's own cached clients (`pipeline.aws_clients.make_client`), so the code under
test is untouched. `after` hooks see a successful answer and may rewrite it or raise (a lost response).

Every handler receives the API parameters through `api_params(context)`: a `before-parameter-build` hook stashes
them in botocore's per-call context, which is shared by the later events of the same call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

PARAMS_KEY = "chaos_params"
# Error shapes per protocol, for answers built in the send layer (botocore parses them like the real thing).
_JSON_SERVICES = {"dynamodb": "com.amazonaws.dynamodb.v20120810#", "secretsmanager": "", "sqs": ""}


def stash_params(client: Any) -> None:
    """Keep each call's API parameters in its context (idempotent per client)."""
    if getattr(client.meta, "_chaos_params_stashed", False):
        return

    def stash(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[PARAMS_KEY] = dict(params)

    client.meta.events.register("before-parameter-build", stash)
    client.meta._chaos_params_stashed = True


def api_params(context: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((context or {}).get(PARAMS_KEY) or {})


class _Body:
    """The `raw` of an AWSResponse: botocore reads it through `stream()`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


@dataclass
class AwsFault:
    """`count` answers (None: until cleared) of `service.operation` replaced by the error `code`/`status`, for the
    calls whose API parameters `match` accepts."""

    service: str
    operation: str
    code: str
    status: int = 500
    message: str = "injected by the chaos suite"
    count: int | None = 1
    layer: str = "call"  # "call": what our code sees; "send": HTTP answers, botocore retries them
    attempts: int = 1  # send layer: how many HTTP attempts of one chosen call fail in a row
    match: Callable[[dict[str, Any]], bool] | None = None
    fired: int = field(default=0, init=False)

    def take(self, params: dict[str, Any], lock: threading.Lock) -> bool:
        if self.match is not None and not self.match(params):
            return False
        with lock:
            if self.count is not None and self.fired >= self.count:
                return False
            self.fired += 1
            return True

    def parsed(self) -> dict[str, Any]:
        return {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": self.status, "HTTPHeaders": {}, "RetryAttempts": 0},
        }

    def http_answer(self) -> AWSResponse:
        """The raw HTTP error answer a service of this protocol would send."""
        if self.service == "s3":
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{self.code}</Code>'
                f"<Message>{self.message}</Message><RequestId>CHAOS</RequestId></Error>"
            ).encode()
            headers = {"Content-Type": "application/xml", "x-amz-request-id": "CHAOS"}
        else:
            prefix = _JSON_SERVICES.get(self.service, "")
            body = json.dumps({"__type": prefix + self.code, "message": self.message}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "CHAOS"}
        headers["Content-Length"] = str(len(body))
        return AWSResponse("https://chaos.invalid/", self.status, headers, _Body(body))


class AwsFaults:
    """The fault switchboard of one pipeline's clients: `add` faults, `after` rewrites, `clear` at the end."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self._client_for = client_for
        self._lock = threading.Lock()
        self._faults: list[AwsFault] = []
        self._pending = threading.local()  # send-layer faults chosen in before-call, applied in before-send
        self._hooked: set[str] = set()
        self.log: list[tuple[str, str, str]] = []  # (service, operation, code) of every fault that fired

    def add(self, fault: AwsFault) -> AwsFault:
        self._hook(fault.service)
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(self, service: str, operation: str, code: str, **kwargs: Any) -> AwsFault:
        return self.add(AwsFault(service, operation, code, **kwargs))

    def after(
        self, service: str, operation: str, rewrite: Callable[[dict[str, Any], dict[str, Any]], None]
    ) -> None:
        """`rewrite(parsed, params)` runs after each successful call: it may change the answer or raise."""
        client = self._client_for(service)
        stash_params(client)

        def handler(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)
            if isinstance(status, int) and status < 300 and "Error" not in parsed:
                rewrite(parsed, api_params(context))

        client.meta.events.register(f"after-call.{service}.{operation}", handler)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def fired(self, service: str | None = None, operation: str | None = None) -> int:
        return sum(1 for s, o, _c in self.log if service in (None, s) and operation in (None, o))

    # --- hooks -------------------------------------------------------------------------------------------------

    def _hook(self, service: str) -> None:
        if service in self._hooked:
            return
        self._hooked.add(service)
        client = self._client_for(service)
        stash_params(client)
        client.meta.events.register(f"before-call.{service}", self._before_call)
        client.meta.events.register(f"before-send.{service}", self._before_send)

    def _choose(self, model: Any, context: dict[str, Any], layer: str) -> AwsFault | None:
        service = model.service_model.endpoint_prefix
        params = api_params(context)
        with self._lock:
            candidates = [
                f for f in self._faults if f.layer == layer and f.operation == model.name and f.service == service
            ]
        for fault in candidates:
            if fault.take(params, self._lock):
                with self._lock:
                    self.log.append((fault.service, fault.operation, fault.code))
                return fault
        return None

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        fault = self._choose(model, context, "call")
        if fault is not None:
            return AWSResponse("https://chaos.invalid/", fault.status, {}, None), fault.parsed()
        fault = self._choose(model, context, "send")
        self._pending.answers = [fault] * fault.attempts if fault is not None else []
        return None

    def _before_send(self, **_: Any) -> Any:
        answers: list[AwsFault] = getattr(self._pending, "answers", [])
        if not answers:
            return None  # botocore's retry (or an untouched call) goes to the real server
        return answers.pop().http_answer()
