"""`gopro-s3-sync`: the one command-line tool (`[project.scripts]` in pyproject.toml; `python -m scripts.cli`).

Built on Click, which replaced what was written by hand: twelve argparse parsers (nine scripts, `python -m
pipeline`, the demo, the local stack) with their own `--version`, `ScriptParser.error` (one usage line), the
`positive_int`/`non_negative_float`/port/size type checks, the mutually exclusive mode group of the credentials
bootstrap, `pipeline/cli.py`'s sub-parser and its own exit codes, and the odd flag spellings of the demo
(`--aws-endpoint-url`) and of `python -m pipeline` (`--json` as lines). The developer tools (the simulator's,
LocalStack's and the Lambda emulator's own commands) keep argparse: no person runs them by hand.
The flags are in options.py, the exit codes and the one-line errors in errors.py, one module per command group
(night.py, archive.py, setup.py, local.py); the logic stays in `scripts/_<name>.py` and devtools/.

`scripts/<name>.py`, `python -m pipeline list-media`, `python -m devtools.local_stack` and
`python -m devtools.local_runtime` are thin wrappers over the same commands (`run_as_script`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from scripts.cli import archive, local, night, setup
from scripts.cli.errors import exit_code_table, run_command
from scripts.cli.options import version_option

PROG = "gopro-s3-sync"
EPILOG = (
    "Every command: --env, --endpoint-url (or AWS_ENDPOINT_URL), --json (one document), --jsonl (one object a "
    "line, where it streams), -v (logs and tracebacks on stderr), -q, --version. "
    "A failure is one line on stderr.\n\n"
    "\b\nExit codes (docs/operations.md):\n" + exit_code_table()
)
#: Old names that still work (hidden): what people and the docs used before the tool.
ALIASES = {"list-media": "list", "sync-status": "status", "bootstrap-credentials": "credentials"}


class Tool(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))


@click.group(
    PROG,
    cls=Tool,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@version_option
def tool() -> None:
    """Archives a GoPro cloud media library into your own S3 bucket, every night, unattended.

    The commands a person runs by hand: what the cloud holds (list), what tonight would do (plan), where things
    stand (status), one video now (enqueue), dead letters back (redrive), proof (audit), the archive's contents
    (catalog), videos back (restore), the GoPro sign-in (credentials), the bill (cost), and a local stack."""


COMMAND_EPILOG = "Exit codes: the table at the end of `gopro-s3-sync --help`, and docs/operations.md."

for group in (night, archive, setup, local):
    for command in group.COMMANDS:
        command.epilog = command.epilog or COMMAND_EPILOG
        command.context_settings.setdefault("max_content_width", 110)
        tool.add_command(command)

#: `scripts/<name>.py` -> the subcommand it stands for.
SCRIPT_COMMANDS = {
    "sync_status": "status",
    "enqueue_media": "enqueue",
    "redrive_dlq": "redrive",
    "audit_archive": "audit",
    "catalog": "catalog",
    "restore": "restore",
    "bootstrap_credentials": "credentials",
    "estimate_cost": "cost",
    "backfill_sidecars": "backfill-sidecars",
    "list_media": "list",
    "plan": "plan",
}


def main(argv: Sequence[str] | None = None, **obj: Any) -> int:
    """The console script's entry point; `obj` reaches the commands (tests answer the password prompt with it)."""
    return run_command(tool, argv, PROG, obj=obj or None)


def run_as_script(name: str, argv: Sequence[str] | None = None, **obj: Any) -> int:
    """`python scripts/<name>.py ARGS` = `gopro-s3-sync <command> ARGS`, named as the script in its messages."""
    command = tool.commands[SCRIPT_COMMANDS[name]]
    return run_command(command, argv, f"python scripts/{name}.py", obj=obj or None)


if __name__ == "__main__":
    sys.exit(main())
