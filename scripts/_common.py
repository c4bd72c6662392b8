"""What every command shares: settings, AWS clients, resource lookups (the arguments are Click's: scripts/cli/).

How to run a command: `gopro-s3-sync <command> --help` (installed by `make setup`), `python -m scripts.cli`, or the
thin wrappers `python scripts/<name>.py` kept for the schedule and the docs.

Why a module of its own:
- **Names come from `--env`, like the stack's.** `pipeline.resources.names_for(env)` names the queue, the DLQ, the
  table, the topic and the secret for the CDK stack, the local stack and these commands alike; queue URLs are
  looked up by name (`GetQueueUrl`), never pasted. Per-resource overrides in the environment (`TABLE_NAME`,
  `QUEUE_URL` ...) are ignored here so `--env prod` can never be silently redirected to another table.
- **One clear line on failure**: the exit codes and the classification live in `scripts/cli/errors.py`; the
  names are re-exported here for the command modules.
- **Nothing secret on the way out.** Every message goes through the pipeline's redactor before it is printed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline import resources
from pipeline.aws_clients import make_client
from pipeline.config import ConfigError, EnvVar, Settings
from pipeline.observability.logging import configure_logging
from scripts.cli.errors import (
    EXIT_DENIED,
    EXIT_FAILED,
    EXIT_FINDINGS,
    EXIT_GOPRO_CREDENTIALS,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    GoProCredentialsMissing,
    MissingResource,
    PermissionDenied,
    ScriptError,
    Unreachable,
    UsageError,
    classify,
    error_code,
    is_denied,
    is_not_found,
    one_line,
)
from scripts.cli.errors import translate_aws_error as _translate

__all__ = [
    "EXIT_DENIED",
    "EXIT_FAILED",
    "EXIT_FINDINGS",
    "EXIT_GOPRO_CREDENTIALS",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Context",
    "GoProCredentialsMissing",
    "MissingResource",
    "PermissionDenied",
    "ScriptError",
    "Unreachable",
    "UsageError",
    "aws_call",
    "create_provider",
    "error_code",
    "is_denied",
    "is_not_found",
    "load_context",
    "print_json",
    "print_jsonl",
    "queue_arn",
    "queue_depth",
    "queue_url",
    "run",
    "setup_logging",
    "translate_aws_error",
]

# Environment variables that would point one resource elsewhere than `--env` says; the commands drop them.
_NAME_OVERRIDES = (
    EnvVar.ENVIRONMENT,
    EnvVar.TABLE_NAME,
    EnvVar.BUCKET_NAME,
    EnvVar.QUEUE_URL,
    EnvVar.DLQ_URL,
    EnvVar.TOPIC_ARN,
    EnvVar.CREDENTIALS_SECRET_ID,
)

# --- settings and clients ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a script works with: the settings of `--env` and the resource names of that environment."""

    settings: Settings
    names: resources.ResourceNames

    @property
    def where(self) -> str:
        """`eu-west-1` or `eu-west-1 at http://127.0.0.1:5000`, for messages."""
        endpoint = self.settings.aws_endpoint_url
        return f"{self.settings.aws_region} at {endpoint}" if endpoint else self.settings.aws_region

    def client(self, service: str, **options: Any) -> Any:
        return make_client(service, self.settings, **options)


def load_context(args: Any, *, provider: str | None = None) -> Context:
    """Settings for `args.env` (+ `--endpoint-url`, `--region`), everything else from the environment as usual."""
    environ = {key: value for key, value in os.environ.items() if key not in _NAME_OVERRIDES}
    environ[EnvVar.ENVIRONMENT] = args.env
    if getattr(args, "endpoint_url", None):
        environ[EnvVar.AWS_ENDPOINT_URL] = args.endpoint_url
    if getattr(args, "region", None):
        environ[EnvVar.AWS_REGION] = args.region
    if provider:
        environ[EnvVar.PROVIDER] = provider
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        raise UsageError(f"configuration: {exc}") from None
    return Context(settings=settings, names=resources.names_for(args.env))


# --- AWS errors as one line ---------------------------------------------------------------------------------


def translate_aws_error(exc: ClientError, what: str, ctx: Context | None = None) -> ScriptError:
    """A ScriptError naming `what` (e.g. "queue gopro-sync-downloads-dev") for a ClientError about it."""
    return _translate(exc, what, ctx.where if ctx else "")


@contextlib.contextmanager
def aws_call(what: str, ctx: Context | None = None) -> Iterator[None]:
    """Turns a ClientError raised inside the block into a one-line ScriptError about `what`."""
    try:
        yield
    except ClientError as exc:
        raise translate_aws_error(exc, what, ctx) from None


def queue_url(ctx: Context, queue_name: str) -> str:
    """The URL of `queue_name` (GetQueueUrl), or MissingResource."""
    with aws_call(f"queue {queue_name}", ctx):
        return str(ctx.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"])


def queue_arn(ctx: Context, url: str, queue_name: str) -> str:
    with aws_call(f"queue {queue_name}", ctx):
        attributes = ctx.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def queue_depth(ctx: Context, url: str, queue_name: str) -> dict[str, int]:
    """Visible and in-flight message counts (approximate, as SQS reports them)."""
    with aws_call(f"queue {queue_name}", ctx):
        attributes = ctx.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    return {
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }


# --- running a script ----------------------------------------------------------------------------------------


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def print_jsonl(objects: Any) -> None:
    """One JSON object a line (`--jsonl`), flushed as it goes so a pipe sees each at once."""
    for item in objects:
        print(json.dumps(item, sort_keys=True, default=str), flush=True)


def run(name: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Calls `main(argv)` and turns every expected failure into one stderr line and an exit code (for callers that
    run a command's logic without its Click front, as some tests do)."""
    try:
        return int(main(argv))
    except (Exception, KeyboardInterrupt) as exc:
        known = classify(exc)
        if known is None:
            raise
        message, code = known
    sys.stderr.write(f"{name}: error: {one_line(message)}\n")
    return code


def setup_logging(args: Any) -> None:
    """JSON logs to stderr: errors only by default (stdout and stderr stay readable), everything with -v."""
    level = "INFO" if getattr(args, "verbose", False) else "CRITICAL"
    configure_logging(level, stream=sys.stderr)
    logging.captureWarnings(True)


# --- the provider --------------------------------------------------------------------------------------------


def create_provider(ctx: Context, name: str | None = None) -> Any:
    """The provider `name` (default: the settings'), its credentials in the environment checked first so that
    half of them is one clear line (exit 6) rather than a refused token later."""
    from pipeline.providers import registry
    from pipeline.providers.gopro.config import GoProEnv, GoProSettings

    name = name or ctx.settings.provider
    if name == "gopro":
        given = GoProSettings.of(ctx.settings).credentials_override
        if given.refresh_token and not given.access_token and not (given.client_id and given.client_secret):
            missing = " and ".join(
                var
                for var, value in (
                    (GoProEnv.CLIENT_ID, given.client_id),
                    (GoProEnv.CLIENT_SECRET, given.client_secret),
                )
                if not value
            )
            raise GoProCredentialsMissing(
                f"{GoProEnv.REFRESH_TOKEN} is set but not {missing}: a refresh token needs your client id and "
                "secret (set them, or store the credentials with `gopro-s3-sync credentials`)"
            )
    try:
        return registry.create(name, ctx.settings)
    except registry.UnknownProvider as exc:
        raise UsageError(str(exc).strip("'\"")) from None
