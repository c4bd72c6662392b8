"""`python -m pipeline …`: the old entry point, kept as a thin wrapper over the `gopro-s3-sync` tool.

`python -m pipeline list-media [--json]` is `gopro-s3-sync list [--jsonl]` (the old `--json` meant one object a
line, which the tool calls `--jsonl`); every other command line goes to the tool as it is. The tool lives in
`scripts/cli/` (a checkout, not the Lambda package), so it is imported only when this runs.
"""

from __future__ import annotations

from collections.abc import Sequence


def translate(argv: Sequence[str]) -> list[str]:
    """The old spellings in the tool's words."""
    args = list(argv)
    if args[:1] == ["list-media"]:
        return ["list", *("--jsonl" if arg == "--json" else arg for arg in args[1:])]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    from scripts.cli.app import tool
    from scripts.cli.errors import run_command

    return run_command(tool, translate(sys.argv[1:] if argv is None else argv), "python -m pipeline")
