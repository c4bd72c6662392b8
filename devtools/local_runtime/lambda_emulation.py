"""What Lambda gives a function, emulated in this process: its environment, its context, its events.

Why: the local runtime drives the pipeline through the same entry points Lambda calls (each handler's
`handler(event, context)`), so the handlers build their `App` with `current_app()` from the environment, exactly
as a deployed function does. Nothing here knows the handlers' internals.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.app import App, current_app, forget_current_app
from pipeline.config import EnvVar, Settings
from pipeline.providers.gopro.config import GoProEnv, GoProSettings
from pipeline.providers.http_manifest.config import ManifestEnv

LOCAL_ACCOUNT = "000000000000"
#: What `get_remaining_time_in_millis` reads without a time limit (the listing's own "no deadline" value).
NO_LIMIT_MS = 10**9

# The variable each of the pipeline's own settings is read from (`Settings.from_env`). The providers' variables
# (`GoProEnv`, `ManifestEnv`) are carried as they are in the environment the settings were read from.
SETTING_VARIABLES: dict[str, str] = {
    "environment": EnvVar.ENVIRONMENT,
    "provider": EnvVar.PROVIDER,
    "aws_region": EnvVar.AWS_REGION,
    "aws_endpoint_url": EnvVar.AWS_ENDPOINT_URL,
    "table_name": EnvVar.TABLE_NAME,
    "bucket_name": EnvVar.BUCKET_NAME,
    "queue_url": EnvVar.QUEUE_URL,
    "dlq_url": EnvVar.DLQ_URL,
    "topic_arn": EnvVar.TOPIC_ARN,
    "credentials_secret_id": EnvVar.CREDENTIALS_SECRET_ID,
    "metrics_namespace": EnvVar.METRICS_NAMESPACE,
    "tracing_enabled": EnvVar.TRACING_ENABLED,
    "log_level": EnvVar.LOG_LEVEL,
    "http_connect_timeout": EnvVar.HTTP_CONNECT_TIMEOUT,
    "http_read_timeout": EnvVar.HTTP_READ_TIMEOUT,
    "retry_max_attempts": EnvVar.RETRY_MAX_ATTEMPTS,
    "retry_base_delay": EnvVar.RETRY_BASE_DELAY,
    "retry_max_delay": EnvVar.RETRY_MAX_DELAY,
    "token_refresh_margin_seconds": EnvVar.TOKEN_REFRESH_MARGIN,
    "list_page_size": EnvVar.LIST_PAGE_SIZE,
    "include_photos": EnvVar.INCLUDE_PHOTOS,
    "full_reconcile_days": EnvVar.FULL_RECONCILE_DAYS,
    "report_quiet_nights": EnvVar.REPORT_QUIET_NIGHTS,
    "multipart_threshold_bytes": EnvVar.MULTIPART_THRESHOLD,
    "part_size_bytes": EnvVar.PART_SIZE,
    "transfer_window": EnvVar.TRANSFER_WINDOW,
    "allowed_download_hosts": EnvVar.ALLOWED_DOWNLOAD_HOSTS,
    "nightly_budget_bytes": EnvVar.NIGHTLY_BUDGET_BYTES,
    "local_mode": EnvVar.LOCAL_MODE,
}
PROVIDER_VARIABLES: tuple[str, ...] = (*GoProEnv, *ManifestEnv)


def function_environment(settings: Settings) -> dict[str, str | None]:
    """The environment a function deployed with `settings` has (None: the variable is unset).

    `Settings.from_env` of it gives `settings` back; `cold_start` checks that, so a setting added without its
    variable here fails loudly instead of being silently dropped.
    """
    env: dict[str, str | None] = {}
    for name, variable in SETTING_VARIABLES.items():
        env[variable] = _encode(getattr(settings, name))
    env[EnvVar.AWS_DEFAULT_REGION] = settings.aws_region  # Lambda sets both
    source = settings.environ()
    for variable in PROVIDER_VARIABLES:
        env[variable] = source.get(variable) or None
    return env


def _encode(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """`os.environ` with `values` set (None: removed), restored on exit."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _apply(values)
        yield
    finally:
        _apply(saved)


def _apply(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def cold_start(settings: Settings) -> App:
    """The process-wide App of a freshly deployed function with `settings`, as `current_app()` builds it.

    Lambda builds the App once per container, from the function's environment. This process stands in for one
    deployment after another (each `LocalPipeline.start` is a new stack: the tests start many), so each start is
    a cold start: the previous container's App is dropped (`forget_current_app`), and the handlers' own
    `current_app()` builds the next one from the function's environment, which is set only for that moment
    (the settings keep a snapshot of it). One LocalPipeline drives the handlers at a time.

    The logging set-up is the host process's and is kept: a cold start configures a Lambda container's logging
    (JSON on stdout), which here would replace the command's (JSON on stderr) or the test runner's capture.
    """
    forget_current_app()
    with environment(function_environment(settings)), _host_logging():
        app = current_app()
    differ = [
        f.name
        for f in fields(Settings)
        if f.compare and getattr(app.settings, f.name) != getattr(settings, f.name)
    ]
    if GoProSettings.of(app.settings) != GoProSettings.of(settings):
        differ.append("the GoPro provider's settings")
    if differ:
        raise RuntimeError(f"settings not carried by the function's environment: {', '.join(differ)}")
    return app


@contextmanager
def _host_logging() -> Iterator[None]:
    """The root logger's handlers and every logger's level as they are now, restored on exit."""
    root = logging.getLogger()
    handlers, root_level = list(root.handlers), root.level
    levels = {name: logger.level for name, logger in _loggers().items()}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        for name, logger in _loggers().items():
            logger.setLevel(levels.get(name, logging.NOTSET))


def _loggers() -> dict[str, logging.Logger]:
    manager = logging.Logger.manager
    return {name: logger for name, logger in manager.loggerDict.items() if isinstance(logger, logging.Logger)}


@dataclass
class LambdaContext:
    """The part of Lambda's context object the handlers read; the invocation's clock starts when it is built."""

    function_name: str
    invoked_function_arn: str | None
    timeout_seconds: float | None
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 1024
    _started: float = field(default_factory=time.monotonic, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        if self.timeout_seconds is None:
            return NO_LIMIT_MS
        return int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000)


def function_arn(region: str, function_name: str) -> str:
    return f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{function_name}"


def scheduled_event() -> dict[str, Any]:
    """What EventBridge Scheduler sends the lister every night."""
    return {
        "version": "0",
        "id": os.urandom(16).hex(),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "detail": {},
    }


def alarm_event(alarm_name: str) -> dict[str, Any]:
    """What EventBridge sends the summary when the "queue drained" alarm enters ALARM."""
    return {
        "version": "0",
        "id": os.urandom(16).hex(),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "detail": {"alarmName": alarm_name, "state": {"value": "ALARM"}, "previousState": {"value": "OK"}},
    }


def sqs_record(message: dict[str, Any], region: str) -> dict[str, Any]:
    """An SQS message as the Lambda event source mapping delivers it (camelCase, lower-case attribute keys)."""
    attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType"),
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "awsRegion": region,
    }
