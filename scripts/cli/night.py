"""The night's commands: `list` (the cloud library), `plan`, `status`, `enqueue`, `redrive`.

Each one is the options (Click) and a call to its logic in `scripts/_<name>.py`; nothing else happens here.
"""

from __future__ import annotations

from typing import Any

import click

from scripts import _enqueue_media as enqueue_media
from scripts import _list_media as list_media
from scripts import _plan as plan
from scripts import _redrive_dlq as redrive_dlq
from scripts import _sync_status as sync_status
from scripts.cli.options import (
    NON_NEGATIVE,
    NON_NEGATIVE_FLOAT,
    POSITIVE,
    POSITIVE_FLOAT,
    doc_help,
    execute,
    output_options,
    where_options,
)

PROVIDER_HELP = "provider name (default: SYNC_PROVIDER, else gopro)"


@click.command("list", help=doc_help(list_media), short_help="list the cloud library (the provider's)")
@click.option("--provider", help=PROVIDER_HELP)
@where_options
@output_options(jsonl=True, json_help="print the library as ONE JSON document (a list)")
def list_command(**values: Any) -> int:
    return execute(list_media, values)


@click.command("plan", help=doc_help(plan), short_help="what tonight would queue, and why the rest waits")
@click.option("--provider", help=PROVIDER_HELP)
@where_options
@output_options()
def plan_command(**values: Any) -> int:
    return execute(plan, values)


@click.command("status", help=doc_help(sync_status), short_help="where things stand (exit 5: failed media or DLQ)")
@click.option("--provider", help="only this provider's media (default: all)")
@click.option(
    "--limit",
    type=POSITIVE,
    default=sync_status.DEFAULT_LIMIT,
    show_default=True,
    help="at most this many failed and in-progress media each",
)
@where_options
@output_options(jsonl=True)
def status_command(**values: Any) -> int:
    return execute(sync_status, values)


@click.command("enqueue", help=doc_help(enqueue_media), short_help="archive one medium now (--force: again)")
@click.argument("media_id", metavar="MEDIA_ID")
@click.option("--provider", help=PROVIDER_HELP)
@click.option("--run-id", help=f"run id of the message (default: {enqueue_media.MANUAL_RUN_PREFIX}-<time>)")
@click.option("--force", is_flag=True, help="archive it again even if COMPLETED (its record is reset to PENDING)")
@where_options
@output_options()
def enqueue_command(**values: Any) -> int:
    return execute(enqueue_media, values)


@click.command("redrive", help=doc_help(redrive_dlq), short_help="move dead letters back to the queue")
@click.option("--media-id", multiple=True, metavar="ID", help="move only this medium (repeatable)")
@click.option("--max", "max_messages", type=POSITIVE, metavar="N", help="move at most N")
@click.option("--dry-run", is_flag=True, help="show what would move; move nothing")
@click.option("--include-poison", is_flag=True, help="move poison messages too (they will come back)")
@click.option(
    "--hold-seconds",
    type=POSITIVE,
    default=redrive_dlq.DEFAULT_HOLD_SECONDS,
    show_default=True,
    help="how long received DLQ messages stay hidden while the command works",
)
@click.option(
    "--wait-seconds",
    type=NON_NEGATIVE,
    default=redrive_dlq.DEFAULT_WAIT_SECONDS,
    show_default=True,
    help="long-poll time of each receive; an empty answer ends the scan (0 = short polls, exact on a local stack "
    "but may end early on AWS, leaving messages in the DLQ)",
)
@click.option(
    "--poll-seconds",
    type=NON_NEGATIVE_FLOAT,
    default=redrive_dlq.DEFAULT_POLL_SECONDS,
    show_default=True,
    help="native move: seconds between ListMessageMoveTasks calls",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=POSITIVE_FLOAT,
    default=redrive_dlq.DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    help="native move: give up following the task after this many seconds",
)
@where_options
@output_options()
def redrive_command(**values: Any) -> int:
    return execute(redrive_dlq, values)


COMMANDS = (list_command, plan_command, status_command, enqueue_command, redrive_command)
