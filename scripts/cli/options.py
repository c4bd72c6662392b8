"""The one flag vocabulary of `gopro-s3-sync`: every subcommand takes its shared options from here.

- `--env` (default `SYNC_ENV`, else dev), `--endpoint-url` (default `AWS_ENDPOINT_URL`), `--region`: where.
- `--json`: ONE JSON document on stdout; `--jsonl`: one JSON object a line, where the output streams.
- `-v/--verbose`: logs on stderr, and the traceback of a failure; `-q/--quiet`: nothing on stdout
  unless asked for as JSON (the exit code says it all).
- `--version` on every subcommand as on the root.

The value types (`POSITIVE`, `SIZE`, `ISO_DATE` ...) are Click's, so a bad value is a usage error (exit 2) with
the option's name, before any command runs.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Iterator
from datetime import date
from types import SimpleNamespace
from typing import Any, TypeVar

import click

from pipeline import resources
from pipeline.version import version_line

F = TypeVar("F", bound=Callable[..., Any])

POSITIVE = click.IntRange(min=1)
NON_NEGATIVE = click.IntRange(min=0)
POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)
NON_NEGATIVE_FLOAT = click.FloatRange(min=0)
PORT = click.IntRange(min=0, max=65535)


class SizeType(click.ParamType):
    """`4MB`, `2GiB`, `500KB` or a number of bytes (the simulator's sizes)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from devtools.gopro_simulator import parse_size

        try:
            size = parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if size < 1:
            self.fail(f"{value!r} must be at least 1 byte", param, ctx)
        return size


class IsoDate(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


SIZE = SizeType()
ISO_DATE = IsoDate()


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_line())
        ctx.exit(0)


def version_option(function: F) -> F:
    return click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_print_version,
        help="print the name and version, and exit",
    )(function)


def _apply(function: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def where_options(function: F) -> F:
    """`--env`, `--endpoint-url`, `--region`: which resources, on which AWS (or local stack)."""
    return _apply(
        function,
        [
            click.option(
                "--env",
                type=click.Choice(resources.ENVIRONMENTS),
                envvar="SYNC_ENV",
                default=resources.DEFAULT_ENVIRONMENT,
                show_default=True,
                help="environment whose resources to use (default: SYNC_ENV, else dev); names as in "
                "pipeline/resources.py",
            ),
            click.option(
                "--endpoint-url",
                envvar="AWS_ENDPOINT_URL",
                metavar="URL",
                help="AWS endpoint of a local stack (the moto server of `gopro-s3-sync local-stack`); default: "
                "AWS_ENDPOINT_URL, else AWS itself",
            ),
            click.option("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or eu-west-1)"),
        ],
    )


def output_options(
    *, json: bool = True, jsonl: bool = False, json_help: str = "print the result as ONE JSON document"
) -> Callable[[F], F]:
    """`--json` (not where there is no document to print), `--jsonl` where the output streams, `-v`, `-q`,
    `--version`."""

    def decorate(function: F) -> F:
        decorators: list[Callable[[F], F]] = []
        if json:
            decorators.append(click.option("--json", "as_json", is_flag=True, help=json_help))
        if jsonl:
            decorators.append(
                click.option("--jsonl", "as_jsonl", is_flag=True, help="print one JSON object a line, as it goes")
            )
        decorators += [
            click.option(
                "-v",
                "--verbose",
                count=True,
                help="logs (JSON lines, redacted) on stderr, and a failure's traceback",
            ),
            click.option(
                "-q", "--quiet", is_flag=True, help="nothing on stdout but asked-for JSON: the exit code says it"
            ),
            version_option,
        ]
        return _apply(function, decorators)

    return decorate


def bucket_option(function: F) -> F:
    return click.option(
        "--bucket",
        help="archive bucket (default: the stack's ArchiveBucketName output; with --endpoint-url the local name)",
    )(function)


def selector_options(function: F) -> F:
    """Which media (catalog, restore): all of the given selectors must match."""
    return _apply(
        function,
        [
            click.option("--media-id", multiple=True, metavar="ID", help="a media id (repeatable)"),
            click.option("--since", type=ISO_DATE, help="captured on or after this date"),
            click.option("--until", type=ISO_DATE, help="captured on or before this date"),
            click.option("--camera", help="camera model, e.g. 'HERO9 Black' (case-insensitive)"),
            click.option("--type", "media_type", help="media type: video, photo, burst, timelapse_video ..."),
            click.option("--name", help="file name pattern, e.g. 'GX01*.MP4' (case-insensitive, any chapter)"),
        ],
    )


def arguments(values: dict[str, Any]) -> SimpleNamespace:
    """The parsed options as the command modules read them (`args.env`, `args.json` ...): plain attributes."""
    args = SimpleNamespace(**values)
    args.json = bool(values.get("as_json"))
    args.jsonl = bool(values.get("as_jsonl"))
    if isinstance(getattr(args, "media_id", None), tuple):
        args.media_id = list(args.media_id)
    if args.json and args.jsonl:
        raise click.UsageError("--json and --jsonl are exclusive: choose one document or one object a line")
    return args


@contextlib.contextmanager
def quiet_stdout(args: SimpleNamespace) -> Iterator[None]:
    """`-q`: the command's human lines go nowhere (JSON asked for explicitly still goes to stdout)."""
    if not getattr(args, "quiet", False) or args.json or args.jsonl:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield
    sys.stdout.flush()


def doc_help(module: Any) -> str:
    """A command module's docstring as its `--help` text, each paragraph kept as written (lists and examples)."""
    paragraphs = (module.__doc__ or "").strip().split("\n\n")
    return "\n\n".join("\b\n" + paragraph for paragraph in paragraphs)


def execute(module: Any, values: dict[str, Any], **extra: Any) -> int:
    """Runs a command's logic (`module.execute`, scripts/_<name>.py) with the parsed options; `-q` silences its
    human lines."""
    args = arguments(values)
    with quiet_stdout(args):
        return int(module.execute(args, **extra))
