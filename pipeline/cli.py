"""`python -m pipeline …`: the commands a person runs by hand.

Logs go to stderr so that stdout carries only the command's output (one JSON object a line with `--json`).
Exit codes: 0 done, 1 the provider failed, 2 bad configuration or arguments, 3 a new sign-in is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from pipeline.config import ConfigError, Settings
from pipeline.credentials.model import CredentialsError
from pipeline.observability.logging import configure_logging
from pipeline.providers import registry
from pipeline.providers.errors import AuthError, ProviderError
from pipeline.version import version_line

EXIT_OK, EXIT_PROVIDER, EXIT_CONFIG, EXIT_REAUTH = 0, 1, 2, 3


def _list_media(args: argparse.Namespace, settings: Settings) -> int:
    provider = registry.create(args.provider or settings.provider, settings)
    count = 0
    for item in provider.list_media():
        count += 1
        if args.json:
            print(json.dumps(item.as_json(), sort_keys=True), flush=True)
        else:
            size = f"{item.size:>14,}" if item.size is not None else f"{'?':>14}"
            captured = item.captured_at.date().isoformat() if item.captured_at else "????-??-??"
            print(f"{item.media_id:<26} {item.media_type.value:<16} {size} {captured}  {item.filename}")
    if not args.json:
        print(f"{count} media", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list-media", help="list the cloud library through the configured provider")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    listing.add_argument("--provider", help="provider name (default: SYNC_PROVIDER or gopro)")
    listing.set_defaults(run=_list_media)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda settings: args.run(args, settings))


def run_command(command: Callable[[Settings], int]) -> int:
    """Runs `command` with the settings of the environment, logs on stderr and the exit codes above.

    Shared with the local runtime's command (`python -m devtools.local_runtime`), so both answer alike.
    """
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, stream=sys.stderr)
    try:
        return int(command(settings))
    except (ConfigError, CredentialsError, registry.UnknownProvider) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AuthError as exc:
        print(f"authentication failed: {exc}", file=sys.stderr)
        return EXIT_REAUTH if exc.reauth_required else EXIT_PROVIDER
    except ProviderError as exc:
        print(f"provider error: {exc}", file=sys.stderr)
        return EXIT_PROVIDER
    except BrokenPipeError:  # `… | head` closed our stdout: not an error
        return EXIT_OK
