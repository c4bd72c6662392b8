"""The exit-code table of `gopro-s3-sync` and the one place an error becomes one line on stderr.

Why one place: a person running a command at 2 a.m. (or a schedule checking its exit code) needs to know what to
fix, not where in botocore it broke. Every subcommand and every `scripts/*.py` wrapper runs through `run_command`,
which turns Click's usage errors, the commands' own errors, botocore's and the providers' failures and Ctrl-C into
exactly one redacted line and a code from `EXIT_CODES`; the traceback is shown only with `-v`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from requests.exceptions import ConnectionError as RequestsConnectionError

from pipeline.config import ConfigError
from pipeline.credentials.model import CredentialsError, SecretMissing
from pipeline.observability.redaction import redact
from pipeline.providers.errors import AuthError, ProviderError
from pipeline.providers.registry import UnknownProvider

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_DENIED = 4
EXIT_FINDINGS = 5
EXIT_GOPRO_CREDENTIALS = 6
EXIT_UNREACHABLE = 7
EXIT_INTERRUPTED = 130

#: The table printed at the end of the root `--help` and documented in docs/operations.md (a test compares them).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "ok"),
    (EXIT_FAILED, "the work failed"),
    (EXIT_USAGE, "bad usage or value (an option, an argument, the configuration)"),
    (EXIT_NOT_FOUND, "not found: a queue, table, secret or medium"),
    (EXIT_DENIED, "AWS credentials missing or denied"),
    (EXIT_FINDINGS, "the check found problems (audit; status with failed media or dead letters)"),
    (EXIT_GOPRO_CREDENTIALS, "GoPro credentials missing or refused"),
    (EXIT_UNREACHABLE, "an endpoint (AWS or the provider) is unreachable"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)

NO_AWS_CREDENTIALS = "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"

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


def exit_code_table() -> str:
    """The table as `--help` prints it (and docs/operations.md shows it): one `  code  meaning` line each."""
    return "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES)


class ScriptError(Exception):
    """Ends a command with one line on stderr and `exit_code`. The message must already be fit to print."""

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


class GoProCredentialsMissing(ScriptError):
    exit_code = EXIT_GOPRO_CREDENTIALS


class Unreachable(ScriptError):
    exit_code = EXIT_UNREACHABLE


# --- AWS errors ---------------------------------------------------------------------------------------------


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: ClientError) -> bool:
    return error_code(exc) in _NOT_FOUND_CODES


def is_denied(exc: ClientError) -> bool:
    return error_code(exc) in _DENIED_CODES or error_code(exc).endswith("AccessDenied")


def _aws_message(exc: ClientError) -> str:
    text = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())
    return text[:200]


def translate_aws_error(exc: ClientError, what: str, where: str = "") -> ScriptError:
    """A ScriptError naming `what` (e.g. "queue gopro-sync-downloads-dev") for a ClientError about it."""
    where = f" in {where}" if where else ""
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


# --- any exception as (message, code) ------------------------------------------------------------------------


def classify(exc: BaseException) -> tuple[str, int] | None:
    """The line and exit code for an expected failure; None for anything else (a bug)."""
    if isinstance(exc, ScriptError):
        return str(exc), exc.exit_code
    if isinstance(exc, ClientError):
        translated = translate_aws_error(exc, "the resource")
        return str(translated), translated.exit_code
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return NO_AWS_CREDENTIALS, EXIT_DENIED
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        endpoint = exc.kwargs.get("endpoint_url", "?")
        return f"cannot reach the AWS endpoint {endpoint} (is it up? see --endpoint-url)", EXIT_UNREACHABLE
    if isinstance(exc, BotoCoreError):
        return f"AWS client error: {exc}", EXIT_FAILED
    if isinstance(exc, AuthError):
        return f"GoPro authentication failed: {exc}", EXIT_GOPRO_CREDENTIALS
    if isinstance(exc, SecretMissing):  # nothing stored yet: bootstrap it
        return f"GoPro credentials: {exc}", EXIT_NOT_FOUND
    if isinstance(exc, CredentialsError):  # the secret holds nothing usable: bootstrap it again
        return f"GoPro credentials: {exc}", EXIT_GOPRO_CREDENTIALS
    if isinstance(exc, ConfigError | UnknownProvider):
        return str(exc).strip("'\""), EXIT_USAGE
    if isinstance(exc, ProviderError):
        if _unreachable(exc):
            return f"cannot reach the provider: {exc}", EXIT_UNREACHABLE
        return f"provider error: {exc}", EXIT_FAILED
    if isinstance(exc, RequestsConnectionError):
        return f"cannot reach the provider: {type(exc).__name__}", EXIT_UNREACHABLE
    if isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):
        return "interrupted", EXIT_INTERRUPTED
    return None


def _unreachable(exc: BaseException) -> bool:
    """A provider error caused (at any depth) by a refused or timed-out connection."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, RequestsConnectionError | ConnectionRefusedError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def one_line(text: str) -> str:
    return redact(" ".join(str(text).split()))


# --- running a command ---------------------------------------------------------------------------------------


def _wants_traceback(argv: Sequence[str]) -> bool:
    """-v anywhere among the arguments (also when the parsing itself failed, before any callback ran)."""
    return any(arg == "--verbose" or (arg.startswith("-v") and set(arg[1:]) == {"v"}) for arg in argv)


def run_command(
    command: click.Command, argv: Sequence[str] | None, prog_name: str, *, obj: dict[str, Any] | None = None
) -> int:
    """Runs a Click command (the root group or one subcommand) and returns its exit code, every expected failure
    as one line `<prog>: error: ...` on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    named = _command_path(command, args, prog_name)  # what an error line is named after
    try:
        # Not `command.main`: on Ctrl-C it writes an empty line to stderr before raising, a second line.
        with command.make_context(prog_name, args, obj=obj) as ctx:
            result = command.invoke(ctx)
    except click.exceptions.Exit as stop:  # --help, --version
        return int(stop.exit_code)
    except click.UsageError as exc:
        _say(named, f"{exc.format_message()} (see --help)")
        return EXIT_USAGE
    except click.ClickException as exc:
        _say(named, exc.format_message())
        return exc.exit_code
    except BrokenPipeError:  # `... | head` closed our stdout: not an error
        return EXIT_OK
    except (Exception, KeyboardInterrupt, click.exceptions.Abort) as exc:
        known = classify(exc)
        if _wants_traceback(args):
            traceback.print_exc(file=sys.stderr)
        if known is None:  # a bug: still one line, the traceback with -v
            _say(named, f"unexpected {type(exc).__name__}: {exc} (a bug: -v shows where; please report it)")
            return EXIT_FAILED
        _say(named, known[0])
        return known[1]
    return int(result or 0) if isinstance(result, int) else EXIT_OK


def _command_path(command: click.Command, args: Sequence[str], prog: str) -> str:
    """`gopro-s3-sync status` for `status ...` given to the root group: what the error line is named after."""
    if isinstance(command, click.Group) and args and not args[0].startswith("-"):
        found = command.get_command(click.Context(command), args[0])
        if found is not None:
            return f"{prog} {found.name}"
    return prog


def _say(prog: str, message: str) -> None:
    sys.stderr.write(f"{prog}: error: {one_line(message)}\n")
    sys.stderr.flush()
