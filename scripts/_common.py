"""What every operator script shares: arguments, settings, AWS clients, resource lookups and one-line errors.

How to run a script: from the repository root, `python scripts/<name>.py --help` (or `python -m scripts.<name>`).
Each script starts with a two-line guard that puts the repository root on `sys.path` when it is run as a file;
everything else lives here, once.

Why a module of its own:
- **Names come from `--env`, like the stack's.** `pipeline.resources.names_for(env)` names the queue, the DLQ, the
  table, the topic and the secret for the CDK stack, the local stack and these scripts alike; queue URLs are looked
  up by name (`GetQueueUrl`), never pasted. Per-resource overrides in the environment (`TABLE_NAME`, `QUEUE_URL`
  ...) are ignored here so `--env prod` can never be silently redirected to another table.
- **One clear line on failure.** A bad argument, a missing queue/table/secret or a missing permission ends the
  script with exactly one line on stderr and a distinct exit code, never a traceback: the person running it at 2
  a.m. needs to know what to fix, not where in botocore it broke.
- **Nothing secret on the way out.** Every message goes through the pipeline's redactor before it is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from pipeline import resources
from pipeline.aws_clients import make_client
from pipeline.config import ConfigError, EnvVar, Settings
from pipeline.credentials.model import CredentialsError
from pipeline.observability.logging import configure_logging
from pipeline.observability.redaction import redact
from pipeline.providers.errors import AuthError, ProviderError
from pipeline.providers.registry import UnknownProvider
from pipeline.version import version_line

# Exit codes shared by every script (documented in docs/operations.md).
EXIT_OK = 0
EXIT_FAILED = 1  # the work itself failed (provider error, a move that did not finish, ...)
EXIT_USAGE = 2  # bad arguments (argparse's own code)
EXIT_NOT_FOUND = 3  # a queue, table, secret (or usable credentials in it) or medium does not exist
EXIT_DENIED = 4  # missing AWS permission or unusable AWS credentials
EXIT_INTERRUPTED = 130

RUN_HINT = "run from the repository root: python scripts/{name}.py --help (or python -m scripts.{name})"

# Environment variables that would point one resource elsewhere than `--env` says; the scripts drop them.
_NAME_OVERRIDES = (
    EnvVar.ENVIRONMENT,
    EnvVar.TABLE_NAME,
    EnvVar.BUCKET_NAME,
    EnvVar.QUEUE_URL,
    EnvVar.DLQ_URL,
    EnvVar.TOPIC_ARN,
    EnvVar.CREDENTIALS_SECRET_ID,
)

_NOT_FOUND_CODES = frozenset(
    {
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "ResourceNotFoundException",
        "NoSuchBucket",
        "NotFound",
        "NotFoundException",
    }
)
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "KMSAccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)


class ScriptError(Exception):
    """Ends a script with one line on stderr and `exit_code`. The message must already be fit to print."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ScriptError):
    exit_code = EXIT_USAGE


class MissingResource(ScriptError):
    exit_code = EXIT_NOT_FOUND


class PermissionDenied(ScriptError):
    exit_code = EXIT_DENIED


class ScriptParser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line (argparse prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def make_parser(name: str, description: str, *, aws: bool = True) -> ScriptParser:
    """The parser of `scripts/<name>.py` with the shared options (`--env`, `--endpoint-url`, `--region`, `-v`)."""
    parser = ScriptParser(
        prog=f"python scripts/{name}.py",
        description=description,
        epilog=RUN_HINT.format(name=name) + ". Exit codes: 0 ok, 1 failed, 2 bad arguments, 3 not found, "
        "4 missing permission. See docs/operations.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_line())
    if aws:
        parser.add_argument(
            "--env",
            choices=resources.ENVIRONMENTS,
            default=resources.DEFAULT_ENVIRONMENT,
            help="environment whose resources to use (default %(default)s); names as in pipeline/resources.py",
        )
        parser.add_argument(
            "--endpoint-url",
            help="AWS endpoint of a local stack (e.g. http://127.0.0.1:5000 for moto); default: AWS itself",
        )
        parser.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or eu-west-1)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (JSON lines) to stderr")
    return parser


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


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


def load_context(args: argparse.Namespace, *, provider: str | None = None) -> Context:
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


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: ClientError) -> bool:
    return error_code(exc) in _NOT_FOUND_CODES


def is_denied(exc: ClientError) -> bool:
    return error_code(exc) in _DENIED_CODES or error_code(exc).endswith("AccessDenied")


def _aws_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    text = " ".join(str(error.get("Message", "")).split())
    return text[:200]


def translate_aws_error(exc: ClientError, what: str, ctx: Context | None = None) -> ScriptError:
    """A ScriptError naming `what` (e.g. "queue gopro-sync-downloads-dev") for a ClientError about it."""
    where = f" in {ctx.where}" if ctx else ""
    operation = getattr(exc, "operation_name", "") or "the AWS call"
    if is_not_found(exc):
        return MissingResource(
            f"{what} not found{where}: deploy the stack for this --env (or provision the local stack)"
        )
    if is_denied(exc):
        return PermissionDenied(
            f"not allowed to {operation} on {what}{where} ({error_code(exc)}): check your AWS credentials "
            "and the role's permissions"
        )
    return ScriptError(f"{operation} on {what} failed: {error_code(exc)}: {_aws_message(exc)}")


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


def _one_line(text: str) -> str:
    return redact(" ".join(str(text).split()))


def run(name: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Calls `main(argv)` and turns every expected failure into one stderr line and an exit code."""
    prog = f"{name}.py"
    try:
        return int(main(argv))
    except ScriptError as exc:
        message, code = str(exc), exc.exit_code
    except ClientError as exc:
        translated = translate_aws_error(exc, "the resource")
        message, code = str(translated), translated.exit_code
    except NoCredentialsError:
        message, code = "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/...)", EXIT_DENIED
    except EndpointConnectionError as exc:
        message, code = f"cannot reach the AWS endpoint ({exc.kwargs.get('endpoint_url', '?')})", EXIT_FAILED
    except BotoCoreError as exc:
        message, code = f"AWS client error: {exc}", EXIT_FAILED
    except AuthError as exc:
        hint = " (a new sign-in is needed: scripts/bootstrap_credentials.py)" if exc.reauth_required else ""
        message, code = f"authentication failed: {exc}{hint}", EXIT_FAILED
    except CredentialsError as exc:  # the secret is missing (or holds nothing usable): bootstrap it
        message, code = f"credentials: {exc}", EXIT_NOT_FOUND
    except (ConfigError, UnknownProvider) as exc:
        message, code = str(exc).strip("'\""), EXIT_USAGE
    except ProviderError as exc:
        message, code = f"provider error: {exc}", EXIT_FAILED
    except KeyboardInterrupt:
        message, code = "interrupted", EXIT_INTERRUPTED
    sys.stderr.write(f"{prog}: error: {_one_line(message)}\n")
    return code


def setup_logging(args: argparse.Namespace) -> None:
    """JSON logs to stderr: errors only by default (stdout and stderr stay readable), everything with -v."""
    level = "INFO" if getattr(args, "verbose", False) else "CRITICAL"
    configure_logging(level, stream=sys.stderr)
    logging.captureWarnings(True)
