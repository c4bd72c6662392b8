"""X-Ray tracing through aws-xray-sdk when enabled; a no-op otherwise (locally and in tests).

Why a wrapper: outside Lambda there is no parent segment, and the SDK would log "cannot find the current
segment" on every call; code that traces should not need to know where it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.observability import correlation

log = logging.getLogger(__name__)


class Tracer:
    def __init__(self, enabled: bool, *, patch_libraries: bool = True) -> None:
        self.enabled = enabled
        self._recorder: Any = None
        if enabled:
            from aws_xray_sdk.core import patch, xray_recorder

            if patch_libraries:
                # Traces boto3 and requests calls as subsegments (S3, DynamoDB, SQS, the provider's HTTP API).
                patch(["boto3", "botocore", "requests"])
            xray_recorder.configure(context_missing="LOG_ERROR")
            self._recorder = xray_recorder
        else:
            from aws_xray_sdk import global_sdk_config

            global_sdk_config.set_sdk_enabled(False)

    @contextmanager
    def subsegment(self, name: str, **annotations: str | int | float | bool) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with self._recorder.in_subsegment(name) as sub:
            if sub is not None:
                context_id = correlation.get("correlation_id")
                if context_id and "correlation_id" not in annotations:
                    annotations = {**annotations, "correlation_id": context_id}
                for key, value in annotations.items():
                    sub.put_annotation(key, value)
            yield

    def annotate(self, key: str, value: str | int | float | bool) -> None:
        if not self.enabled:
            return
        try:
            self._recorder.put_annotation(key, value)
        except Exception as exc:  # an annotation is never worth failing a transfer
            log.debug("x-ray annotation %s skipped: %s", key, exc)
