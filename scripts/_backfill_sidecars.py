"""One-off: writes the metadata sidecar of every medium archived before sidecars existed.

For each COMPLETED medium without a sidecar, the sidecar is built from its state record and its objects' own
metadata (original file name, item number, CRC32C), each object checked first the way the downloader checks it
(size and CRC32C as recorded), so a back-filled sidecar never claims a video that is not there. Listing facts
the table never kept (camera, upload time, title) come from the provider's describe() where it has one, else
stay null. A dry run unless `--yes`; running it twice is harmless (media with a sidecar are skipped).

Example: python scripts/backfill_sidecars.py --env prod --yes
"""

from __future__ import annotations

from typing import Any

from pipeline.messages import DownloadMessage
from pipeline.providers.base import CloudProvider
from pipeline.services.sidecar import SidecarError, SidecarWriter, build_sidecar, read_sidecar, sidecar_key
from pipeline.state import MediaRecord, StateStore
from scripts._archive import completed_records, list_folder, media_folder
from scripts._common import (
    EXIT_FAILED,
    EXIT_OK,
    aws_call,
    create_provider,
    load_context,
    print_json,
    setup_logging,
)

NAME = "backfill_sidecars"


def _message(record: MediaRecord) -> DownloadMessage:
    return DownloadMessage(
        run_id=record.run_id or "backfill",
        correlation_id="backfill",
        provider=record.provider,
        media_id=record.media_id,
        filename=record.filename or record.media_id,
        size=record.size,
        captured_at=record.captured_at,
    )


def _recorded_checksums(record: MediaRecord, count: int) -> list[str | None]:
    """The record's CRC32C per object: one value, or the files' values joined in plan order."""
    if record.checksum is None:
        return [None] * count
    values = record.checksum.value.split(",")
    return [*values, *[None] * count][:count] if len(values) == count else [None] * count


def backfill(
    s3: object, bucket: str, state: StateStore, provider_name: str, provider: CloudProvider | None, *, write: bool
) -> dict[str, list[str]]:
    """Sidecars for the COMPLETED media of `provider_name` that have none; `provider` (optional) describes them."""
    writer = SidecarWriter(s3, bucket)
    outcome: dict[str, list[str]] = {"written": [], "would_write": [], "present": [], "refused": []}
    for record in completed_records(state, provider_name):
        folder = media_folder(record) or ""
        if read_sidecar(s3, bucket, sidecar_key(folder)) is not None:
            outcome["present"].append(record.media_id)
            continue
        listed = list_folder(s3, bucket, folder)
        try:
            if not listed:
                raise SidecarError(f"{folder} holds no objects")
            total = sum(int(o["Size"]) for o in listed)
            if record.size is not None and total != record.size:
                raise SidecarError(f"{folder} holds {total} bytes, not the {record.size} recorded")
            sums = _recorded_checksums(record, len(listed))
            objects = [
                writer.archived(o["Key"], size=int(o["Size"]), crc32c=c) for o, c in zip(listed, sums, strict=True)
            ]
        except SidecarError as exc:
            outcome["refused"].append(f"{record.media_id}: {exc}")
            continue
        objects.sort(key=lambda o: o.item)
        if not write:
            outcome["would_write"].append(record.media_id)
            continue
        item = writer.describe(provider, record.media_id) if provider else None
        writer.put(build_sidecar(_message(record), objects, item))
        outcome["written"].append(record.media_id)
    return outcome


def execute(args: Any) -> int:
    setup_logging(args)
    ctx = load_context(args)
    provider = None if args.no_describe else create_provider(ctx)
    with aws_call(f"bucket {ctx.settings.bucket_name}", ctx):
        outcome = backfill(
            ctx.client("s3"),
            ctx.settings.bucket_name,
            StateStore.from_settings(ctx.settings),
            ctx.settings.provider,
            provider,
            write=args.yes,
        )
    print_json(outcome)
    return EXIT_FAILED if outcome["refused"] else EXIT_OK
