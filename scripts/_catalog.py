"""The catalog of the archive: every archived medium with its chapters, sizes, storage class and restore state.

Built from the state table (which media are archived), the sidecars beside them (what the cloud knew: type,
camera, capture time, title, chapter names) and S3 itself (each object's storage class now, and whether it is
restored right now). Exports: `--json` to stdout, `--csv PATH`, and `--html PATH`, one self-contained page to
browse by year and month, camera and type, with filters and search in the page. `--upload` puts the page in the
bucket under `catalog/` and prints a presigned link (valid `--link-hours`).

The selectors are those of `scripts/restore.py`, so what the catalog shows is what a restore would pick.

Example: python scripts/catalog.py --env prod --html ~/gopro-catalog.html --since 2025-01-01
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.clock import iso_utc, utc_now
from pipeline.state import StateStore
from scripts._archive import (
    Medium,
    archive_bucket,
    load_archive,
    select,
    selected_records,
)
from scripts._catalog_page import render_page
from scripts._common import (
    EXIT_OK,
    Context,
    UsageError,
    aws_call,
    load_context,
    print_json,
    setup_logging,
)

NAME = "catalog"
CATALOG_PREFIX = "catalog/"
CSV_FIELDS = (
    "media_id",
    "type",
    "captured_at",
    "camera",
    "title",
    "filename",
    "size",
    "objects",
    "chapters",
    "storage_class",
    "state",
    "keys",
)


def csv_rows(media: Sequence[Medium]) -> list[dict[str, Any]]:
    return [
        {
            "media_id": m.media_id,
            "type": m.media_type,
            "captured_at": m.captured_at or "",
            "camera": m.camera or "",
            "title": m.title or "",
            "filename": m.filename or "",
            "size": m.size,
            "objects": len(m.files),
            "chapters": " | ".join(f.filename for f in m.files),
            "storage_class": m.storage_class,
            "state": m.state,
            "keys": " | ".join(f.key for f in m.files),
        }
        for m in media
    ]


def write_csv(path: Path, media: Sequence[Medium]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(csv_rows(media))


def page(media: Sequence[Medium], env: str) -> str:
    return render_page(
        [m.as_json() for m in media], title=f"GoPro archive ({env})", generated_at=iso_utc(utc_now())
    )


def upload_page(ctx: Context, bucket: str, text: str, hours: int) -> tuple[str, str]:
    """Puts the page under `catalog/` in the archive bucket; returns (key, presigned GET link)."""
    s3 = ctx.client("s3")
    key = f"{CATALOG_PREFIX}catalog-{utc_now().strftime('%Y%m%dT%H%M%SZ')}.html"
    with aws_call(f"bucket {bucket}", ctx):
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=text.encode("utf-8"),
            ContentType="text/html; charset=utf-8",
            StorageClass="STANDARD",
        )
        link = s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=hours * 3600
        )
    return key, str(link)


def build(ctx: Context, bucket: str, args: Any) -> list[Medium]:
    s3 = ctx.client("s3")
    with aws_call(f"table {ctx.settings.table_name}", ctx):
        records = selected_records(StateStore.from_settings(ctx.settings), args, ctx.settings.provider)
    with aws_call(f"bucket {bucket}", ctx):
        media = select(load_archive(s3, bucket, records), args)
    return sorted(media, key=lambda m: (m.captured_at or "", m.media_id))


def execute(args: Any) -> int:
    if not (args.json or args.csv or args.html or args.upload):
        raise UsageError("say what to make: --json, --csv PATH, --html PATH and/or --upload")
    setup_logging(args)
    ctx = load_context(args)
    bucket = archive_bucket(ctx, args)
    media = build(ctx, bucket, args)
    if args.json:
        print_json([m.as_json() for m in media])
    if args.csv:
        write_csv(args.csv, media)
        print(f"wrote {args.csv} ({len(media)} media)", file=sys.stderr)
    if args.html or args.upload:
        text = page(media, args.env)
        if args.html:
            args.html.write_text(text, encoding="utf-8")
            print(f"wrote {args.html} ({len(media)} media)", file=sys.stderr)
        if args.upload:
            key, link = upload_page(ctx, bucket, text, args.link_hours)
            shown = {"key": key, "link": link, "valid_hours": args.link_hours}
            print(json.dumps(shown), file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK
