"""Enqueue one medium for archiving by hand, in exactly the message schema the lister uses.

The id is checked against the provider's alphabet, the medium is looked up at the provider (a medium the provider
does not know is refused, nothing is sent), and one DownloadMessage goes to the environment's download queue.
Filename, capture time and size come from the provider and, where it does not say (GoPro's single-medium lookup
has no capture time), from the medium's state record, so the object lands under the same S3 key the nightly
run would have used. Works against AWS and against a local stack (--endpoint-url).

`--force` archives a COMPLETED medium again: its record goes back to PENDING before the message is sent, so the
downloader delivers it anew (files already in S3 with the right size are checked and kept, a missing or
different one is downloaded again). Without it, a COMPLETED medium's message is acknowledged unchanged.

Example: python scripts/enqueue_media.py 62NzWRrpPXm7o --env prod [--force]
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from pipeline import resources
from pipeline.clock import iso_utc, utc_now
from pipeline.messages import PoisonMessage
from pipeline.observability.correlation import new_correlation_id, new_run_id
from pipeline.providers.base import CloudProvider, MediaItem
from pipeline.providers.errors import InvalidMediaId, MediaNotFound
from pipeline.queueing import send_download_messages
from pipeline.services.candidates import Candidate
from pipeline.state import MediaRecord, MediaStatus, StateStore
from scripts._common import (
    EXIT_OK,
    Context,
    MissingResource,
    ScriptError,
    UsageError,
    aws_call,
    create_provider,
    load_context,
    print_json,
    queue_url,
    setup_logging,
)

log = logging.getLogger(__name__)

NAME = "enqueue_media"
# Manual runs are recognisable in logs and state (`run_id` of the record) and never collide with nightly ones.
MANUAL_RUN_PREFIX = "manual"


def lookup(provider: CloudProvider, media_id: str) -> MediaItem:
    """The medium as the provider describes it now; MediaNotFound when it does not exist."""
    return provider.describe(media_id)


def merge(item: MediaItem, record: MediaRecord | None) -> Candidate:
    """The message's facts as the listing would send them (`Candidate.from_item`: item count and sidecar facts
    included), completed by what the lister recorded earlier (same key as a nightly run)."""
    candidate = Candidate.from_item(item)
    if record is None:
        return candidate
    return replace(
        candidate,
        filename=item.filename or record.filename or item.media_id,
        captured_at=candidate.captured_at or record.captured_at,
        size=item.size if item.size is not None else record.size,
    )


def enqueue(
    ctx: Context,
    provider_name: str,
    raw_id: str,
    run_id: str | None,
    *,
    force: bool = False,
    provider: CloudProvider | None = None,
    url: str | None = None,
    state: StateStore | None = None,
) -> dict[str, object]:
    """One medium onto the download queue. `provider`, `url` and `state` let a caller enqueueing many media
    (`audit_archive.py --repair`) build them once; by default they are made here. `force`: a COMPLETED medium
    is reset to PENDING first, so the downloader archives it again."""
    if provider is None:
        provider = create_provider(ctx, provider_name)
    try:
        media_id = provider.validate_media_id(raw_id)
    except InvalidMediaId as exc:
        raise UsageError(str(exc)) from None
    url = url or queue_url(ctx, ctx.names.queue)
    state = state or StateStore.from_settings(ctx.settings)
    with aws_call(f"table {ctx.settings.table_name}", ctx):
        record = state.media.get(provider_name, media_id)
    try:
        item = lookup(provider, media_id)
    except MediaNotFound:
        raise MissingResource(
            f"media {media_id} not found at provider {provider_name}; nothing enqueued"
        ) from None
    described = merge(item, record)
    try:
        message = described.message(
            run_id=run_id or f"{MANUAL_RUN_PREFIX}-{new_run_id(iso_utc(utc_now()))}",
            correlation_id=new_correlation_id(),
            provider=provider_name,
        )
    except PoisonMessage as exc:
        raise UsageError(f"cannot build the message: {exc}") from None
    reset = force and record is not None and record.status is MediaStatus.COMPLETED
    if reset:
        _reopen(ctx, state, provider_name, media_id)
    with aws_call(f"queue {ctx.names.queue}", ctx):
        report = send_download_messages(ctx.client("sqs"), url, [message])
    if not report.ok:
        failure = report.failed[0]
        raise ScriptError(f"SQS did not accept the message: {failure.code} {failure.message}".strip())
    _note_queued(state, provider_name, media_id, message.run_id)
    return {
        "queue": ctx.names.queue,
        "message_id": report.sent[0].message_id,
        "provider": provider_name,
        "media_id": media_id,
        "filename": message.filename,
        "captured_at": message.captured_at,
        "size": message.size,
        "run_id": message.run_id,
        "correlation_id": message.correlation_id,
        "state": record.status.value if record else None,
        "reset_to_pending": reset,
    }


def _note_queued(state: StateStore, provider_name: str, media_id: str, run_id: str) -> None:
    """Note the message on a PENDING record as the listing does (`mark_queued`), so tonight's listing does not
    send a second one beside it. After the send: the message is out whatever this says, so a refusal (another
    live message noted, a worker on it, no record yet) or a failed write is only logged."""
    try:
        noted = state.media.mark_queued(
            provider_name, media_id, run_id=run_id, retention_days=resources.QUEUE_RETENTION_DAYS
        )
    except Exception as exc:  # the message is sent: a note that could not be written costs one duplicate at most
        log.warning("could not note the message on %s/%s: %s", provider_name, media_id, exc)
        return
    if not noted:
        log.info(
            "%s/%s: no queued mark (a live message noted already, a worker on it, or no record)",
            provider_name,
            media_id,
        )


def _reopen(ctx: Context, state: StateStore, provider_name: str, media_id: str) -> None:
    """COMPLETED -> PENDING before the message goes out, so the downloader claims it instead of acknowledging it.
    If the send then fails, the PENDING record is not lost work: the next nightly listing queues it again."""
    with aws_call(f"table {ctx.settings.table_name}", ctx):
        outcome = state.media.reset_to_pending(provider_name, media_id, completed_too=True)
    if not outcome.applied:
        reason = outcome.refusal.value if outcome.refusal else "refused"
        raise ScriptError(f"cannot reset {provider_name}/{media_id} to PENDING ({reason}); nothing enqueued")


def execute(args: Any) -> int:
    setup_logging(args)
    ctx = load_context(args, provider=args.provider)
    result = enqueue(ctx, ctx.settings.provider, args.media_id, args.run_id, force=args.force)
    if args.json:
        print_json(result)
        return EXIT_OK
    print(
        f"enqueued {result['provider']}/{result['media_id']} ({result['filename']}) on {result['queue']}"
        f" as message {result['message_id']} (run {result['run_id']})"
    )
    if result["reset_to_pending"]:
        print("reset from COMPLETED to PENDING (--force): the downloader will archive it again")
    elif result["state"] == MediaStatus.COMPLETED.value:
        print(
            "note: this medium is already archived (COMPLETED); the downloader will acknowledge it unchanged "
            "(--force archives it again)"
        )
    if result["captured_at"] is None:
        print("note: capture date unknown; the object will be stored under an 'undated' S3 prefix")
    return EXIT_OK
