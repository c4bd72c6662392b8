"""The archive's commands: `audit`, `catalog`, `restore` (request, status, fetch), `backfill-sidecars`.

Each one is the options (Click) and a call to its logic in `scripts/_<name>.py`; nothing else happens here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scripts import _audit_archive as audit_archive
from scripts import _backfill_sidecars as backfill_sidecars
from scripts import _catalog as catalog
from scripts import _restore as restore
from scripts._restore_fetch import DEFAULT_PART_BYTES, DEFAULT_WORKERS
from scripts.cli.night import PROVIDER_HELP
from scripts.cli.options import (
    POSITIVE,
    bucket_option,
    doc_help,
    execute,
    output_options,
    selector_options,
    where_options,
)

LINK_HOURS = click.IntRange(min=1, max=168)  # a presigned link lives at most 7 days


@click.command("audit", help=doc_help(audit_archive), short_help="is everything archived, provably? (exit 5: no)")
@click.option("--provider", help=PROVIDER_HELP)
@bucket_option
@click.option("--deep", is_flag=True, help="read every object's bytes to compute its CRC32C")
@click.option("--no-listing", is_flag=True, help="compare only the table and the bucket (no provider calls)")
@click.option("--repair", is_flag=True, help="re-enqueue every medium a finding says is missing")
@click.option(
    "--max-repairs",
    type=POSITIVE,
    default=audit_archive.DEFAULT_MAX_REPAIRS,
    show_default=True,
    help="enqueue at most this many media with --repair",
)
@click.option(
    "--workers",
    type=POSITIVE,
    default=audit_archive.DEFAULT_WORKERS,
    show_default=True,
    help="S3 requests at once",
)
@where_options
@output_options(jsonl=True, json_help="print the audit as ONE JSON document (--jsonl: one finding a line)")
def audit_command(**values: Any) -> int:
    return execute(audit_archive, values)


@click.command("catalog", help=doc_help(catalog), short_help="what is in the archive: JSON, CSV or an HTML page")
@click.option("--csv", type=click.Path(path_type=Path, dir_okay=False), metavar="PATH", help="write it as CSV")
@click.option(
    "--html", type=click.Path(path_type=Path, dir_okay=False), metavar="PATH", help="write the HTML page"
)
@click.option("--upload", is_flag=True, help="put the page in the bucket and print a link")
@click.option("--link-hours", type=LINK_HOURS, default=24, show_default=True, help="presigned link lifetime")
@bucket_option
@selector_options
@where_options
@output_options(json_help="print the catalog as ONE JSON document")
def catalog_command(**values: Any) -> int:
    return execute(catalog, values)


@click.command("restore", help=doc_help(restore), short_help="get videos back from the cold storage classes")
@click.argument("command", type=click.Choice(("request", "status", "fetch")), default="request", required=False)
@bucket_option
@selector_options
@click.option(
    "--tier", type=click.Choice(restore.TIERS), default="Standard", show_default=True, help="retrieval tier"
)
@click.option("--days", type=POSITIVE, default=7, show_default=True, help="days a restored copy stays readable")
@click.option("--yes", is_flag=True, help="issue the restores (default: only say what they would be)")
@click.option(
    "--to", type=click.Path(path_type=Path, file_okay=False), help="fetch: the local folder (one per medium)"
)
@click.option("--links", is_flag=True, help="fetch: print presigned links instead")
@click.option("--link-hours", type=LINK_HOURS, default=24, show_default=True, help="fetch --links: lifetime")
@click.option("--workers", type=POSITIVE, default=DEFAULT_WORKERS, show_default=True, help="fetch: parallel reads")
@click.option(
    "--part-bytes", type=POSITIVE, default=DEFAULT_PART_BYTES, show_default=True, help="fetch: range size"
)
@where_options
@output_options(json_help="the answer is ONE JSON document (always)")
def restore_command(**values: Any) -> int:
    return execute(restore, values)


@click.command(
    "backfill-sidecars", help=doc_help(backfill_sidecars), short_help="write the sidecars older media lack"
)
@click.option("--yes", is_flag=True, help="write the sidecars (default: say what would be done)")
@click.option("--no-describe", is_flag=True, help="do not ask the provider for listing facts (offline)")
@where_options
@output_options(json_help="the answer is ONE JSON document (always)")
def backfill_command(**values: Any) -> int:
    return execute(backfill_sidecars, values)


COMMANDS = (audit_command, catalog_command, restore_command, backfill_command)
