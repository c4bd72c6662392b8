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

from pipeline import resources
from pipeline.config import EnvVar, Settings
from pipeline.observability.logging import configure_logging
from scripts.cli.options import PORT, POSITIVE, SIZE, arguments, output_options, quiet_stdout

DEMO_VIDEOS = 12
DEMO_VIDEO_SIZE = "4MB"


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
@click.option("--videos", type=POSITIVE, default=DEMO_VIDEOS, show_default=True, help="simulated library size")
@click.option("--video-size", type=SIZE, default=DEMO_VIDEO_SIZE, show_default=True, help="simulated video size")
@click.option("--no-night", is_flag=True, help="provision only; do not run a first night")
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path(".cache/local-stack/env.sh"),
    show_default=True,
    help="where the export lines are written too (for `source`)",
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path(".cache/local-stack/local-stack.log"),
    show_default=True,
    help="where the functions' logs go (-v: stderr)",
)
@output_options(json_help="(no JSON: the stack prints its export lines)")
def local_stack_command(**values: Any) -> int:
    """A moto server and the GoPro simulator on fixed (or printed) ports, provisioned, with a first night run and
    five downloaders polling; prints the `export` lines the other commands need; Ctrl-C stops it (exit 0).
    A whole session: docs/operations.md, "A local stack session"."""
    from devtools import local_stack

    args = arguments(values)
    settings = Settings.from_env({**os.environ, EnvVar.ENVIRONMENT: args.env})
    configure_logging(settings.log_level, stream=sys.stderr)
    with quiet_stdout(args):
        return local_stack.serve(args, settings, sys.stdout)


@click.command("demo", short_help="the whole pipeline for one night on this machine (make demo)")
@click.option("--endpoint-url", metavar="URL", help="use this AWS endpoint instead of starting a moto server")
@click.option("--aws-endpoint-url", "old_endpoint_url", hidden=True)  # the old spelling, kept working
@click.option("--api-url", metavar="URL", help="use this GoPro API instead of starting the simulator")
@click.option("--videos", type=POSITIVE, default=DEMO_VIDEOS, show_default=True, help="simulated library size")
@click.option("--video-size", type=SIZE, default=DEMO_VIDEO_SIZE, show_default=True, help="simulated video size")
@click.option("--report-json", type=click.Path(dir_okay=False), help="also write the run report to this file")
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path(".cache/demo/local-run.log"),
    show_default=True,
    help="where the logs go (-v: stderr)",
)
@output_options(json_help="(no JSON on stdout: --report-json writes the report)")
def demo_command(**values: Any) -> int:
    """Runs the whole pipeline on an embedded local stack: a progress bar on a terminal (plain lines when piped),
    logs in a file, one report. Exit 0 when every queued video was archived, 1 when not."""
    from devtools.local_runtime.cli import run_local

    args = arguments(values)
    args.endpoint_url = args.endpoint_url or args.old_endpoint_url
    settings = Settings.from_env()
    with quiet_stdout(args):
        return run_local(args, settings)


COMMANDS = (local_stack_command, demo_command)
