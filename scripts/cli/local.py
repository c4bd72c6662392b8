"""The local commands: `local-stack` (a moto server and the GoPro simulator that stay up) and `demo` (one night).

Their logic is devtools/local_stack.py and devtools/local_runtime/; this module is their options (Click) and the
settings they start from. `demo --endpoint-url` does not read AWS_ENDPOINT_URL: the demo starts its own stack
unless told otherwise, and a variable left over from a local-stack session must not silently redirect it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from devtools import local_stack
from devtools.local_runtime import cli as demo_cli
from pipeline import resources
from pipeline.config import EnvVar, Settings
from pipeline.observability.logging import configure_logging
from scripts.cli.options import PORT, POSITIVE, SIZE, arguments, output_options, quiet_stdout

DEMO_VIDEOS = 12
DEMO_VIDEO_SIZE = "4MB"


def library_options(log_file: Path) -> Any:
    """The simulated library's size and where the functions' logs go: the same words for both commands."""

    def decorate(function: Any) -> Any:
        for option in reversed(
            [
                click.option(
                    "--videos",
                    type=POSITIVE,
                    default=DEMO_VIDEOS,
                    show_default=True,
                    help="simulated library size",
                ),
                click.option(
                    "--video-size",
                    type=SIZE,
                    default=DEMO_VIDEO_SIZE,
                    show_default=True,
                    help="simulated video size",
                ),
                click.option(
                    "--log-file",
                    type=click.Path(path_type=Path, dir_okay=False),
                    default=log_file,
                    show_default=True,
                    help="where the functions' logs go (-v: on stderr instead)",
                ),
            ]
        ):
            function = option(function)
        return function

    return decorate


@click.command("local-stack", short_help="a local AWS (moto) and GoPro simulator that stay up")
@click.option(
    "--env",
    type=click.Choice(resources.ENVIRONMENTS),
    default=resources.DEFAULT_ENVIRONMENT,
    show_default=True,
    help="the environment whose resources to provision (the names the CDK stack uses)",
)
@click.option("--moto-port", type=PORT, default=5000, show_default=True, help="the moto server's port (0: free)")
@click.option("--sim-port", type=PORT, default=8765, show_default=True, help="the simulator's port (0: free)")
@library_options(local_stack.DEFAULT_LOG_FILE)
@click.option("--no-night", is_flag=True, help="provision only; do not run a first night")
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=local_stack.DEFAULT_ENV_FILE,
    show_default=True,
    help="where the export lines are written too (for `source`)",
)
@output_options(json=False)  # no document to print: the stack prints its export lines
def local_stack_command(**values: Any) -> int:
    """A moto server and the GoPro simulator on fixed (or printed) ports, provisioned, with a first night run and
    five downloaders polling; prints the `export` lines the other commands need; Ctrl-C stops it (exit 0).
    A whole session: docs/operations.md, "A local stack session"."""
    args = arguments(values)
    settings = Settings.from_env({**os.environ, EnvVar.ENVIRONMENT: args.env})
    configure_logging(settings.log_level, stream=sys.stderr)
    with quiet_stdout(args):
        return local_stack.serve(args, settings, sys.stdout)


@click.command("demo", short_help="the whole pipeline for one night on this machine (make demo)")
@click.option("--endpoint-url", metavar="URL", help="use this AWS endpoint instead of starting a moto server")
@click.option("--aws-endpoint-url", "old_endpoint_url", hidden=True)  # the old spelling, kept working
@click.option("--api-url", metavar="URL", help="use this GoPro API instead of starting the simulator")
@library_options(demo_cli.DEFAULT_LOG_FILE)
@click.option("--report-json", type=click.Path(dir_okay=False), help="also write the run report to this file")
@output_options(json=False)  # --report-json writes the report as JSON
def demo_command(**values: Any) -> int:
    """Runs the whole pipeline on an embedded local stack: a progress bar on a terminal (plain lines when piped),
    logs in a file, one report. Exit 0 when every queued video was archived, 1 when not."""
    args = arguments(values)
    args.endpoint_url = args.endpoint_url or args.old_endpoint_url
    settings = Settings.from_env()
    with quiet_stdout(args):
        return demo_cli.run_local(args, settings)


COMMANDS = (local_stack_command, demo_command)
