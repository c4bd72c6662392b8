"""The set-up commands: `credentials` (the GoPro bootstrap, three modes) and `cost` (the estimate).

Each one is the options (Click) and a call to its logic in `scripts/_<name>.py`; nothing else happens here.
"""

from __future__ import annotations

import getpass
from typing import Any

import click

from pipeline.providers.gopro.api import COOKIE_TOKEN, COOKIE_USER
from scripts import _bootstrap_credentials as bootstrap_credentials
from scripts import _estimate_cost as estimate_cost
from scripts.cli.options import (
    NON_NEGATIVE_FLOAT,
    POSITIVE,
    POSITIVE_FLOAT,
    doc_help,
    execute,
    output_options,
    where_options,
)

MODES = ("username", "cookie_from_stdin", "refresh_token_from_stdin")


@click.command("credentials", help=doc_help(bootstrap_credentials), short_help="store the GoPro credentials")
@click.option("--username", metavar="EMAIL", help="GoPro account e-mail: sign in with the password grant")
@click.option(
    "--cookie-from-stdin",
    "--access-token-from-stdin",
    "cookie_from_stdin",
    is_flag=True,
    help=f"read a pasted {COOKIE_TOKEN} cookie from stdin (lasts about one night)",
)
@click.option("--refresh-token-from-stdin", is_flag=True, help="read a refresh token from stdin")
@click.option(
    "--remember-password",
    is_flag=True,
    help="sign-in mode: store the password in the secret, so the pipeline can sign in again by itself when GoPro "
    "revokes the refresh token",
)
@click.option("--client-id", help="your GoPro client id (default: GOPRO_CLIENT_ID)")
@click.option("--client-secret", help="your GoPro client secret (default: GOPRO_CLIENT_SECRET)")
@click.option("--user-id", help=f"cookie mode: the {COOKIE_USER} cookie, sent along with the token")
@click.option("--no-verify", is_flag=True, help="store without trying the credentials first")
@where_options
@output_options()
@click.pass_context
def credentials_command(ctx: click.Context, **values: Any) -> int:
    chosen = [name for name in MODES if values.get(name)]
    if len(chosen) != 1:
        raise click.UsageError(
            "choose exactly one mode: --username EMAIL, --cookie-from-stdin or --refresh-token-from-stdin", ctx
        )
    prompt = (ctx.obj or {}).get("password_prompt", getpass.getpass)  # tests answer the prompt themselves
    return execute(bootstrap_credentials, values, password_prompt=prompt)


@click.command("cost", help=doc_help(estimate_cost), short_help="what the archive costs, and whether a night fits")
@click.option("--videos", type=POSITIVE, required=True, help="videos in the library")
@click.option("--avg-gb", type=POSITIVE_FLOAT, required=True, help="average video size in GB")
@click.option("--new-per-night", type=NON_NEGATIVE_FLOAT, required=True, help="new videos per night")
@click.option(
    "--config", help="the deployment's configuration file, or an example's name (default config/personal.json)"
)
@click.option("--vpc/--no-vpc", default=None, help="override the configuration's vpc (NAT gateway, endpoints)")
@click.option("--region", help="override the configuration's region (the price table)")
@click.option(
    "--mbps",
    type=POSITIVE_FLOAT,
    default=estimate_cost.DEFAULT_MBPS,
    show_default=True,
    help="throughput of one download",
)
@click.option("--concurrency", type=POSITIVE, help="override the configuration's parallel downloads")
@output_options(json_help="print the estimate as ONE JSON document")
def cost_command(**values: Any) -> int:
    return execute(estimate_cost, values)


COMMANDS = (credentials_command, cost_command)
