"""`devtools.moto_server`: DynamoDB requests are answered one at a time (moto checks a condition and applies the
write as two steps, so two concurrent conditional claims of one item could both win); others stay concurrent."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devtools.moto_server import serialise_dynamodb


class Recorder:
    """A WSGI app that notes how many requests it is answering at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)  # a condition checked, then the write applied
        with self.lock:
            self.now -= 1
        start_response("200 OK", [])
        return [b"{}"]


def _most_at_once(target: str) -> int:
    recorder = Recorder()
    app = serialise_dynamodb(recorder)
    environ = {"HTTP_X_AMZ_TARGET": target}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: app(dict(environ), lambda *_a: None), range(8)))
    assert all(list(answer) == [b"{}"] for answer in answers)
    return recorder.most


def test_dynamodb_requests_are_answered_one_at_a_time() -> None:
    assert _most_at_once("DynamoDB_20120810.UpdateItem") == 1


def test_other_services_stay_concurrent() -> None:
    assert _most_at_once("AmazonSQS.ReceiveMessage") > 1
    assert _most_at_once("") > 1  # S3 carries no target header
