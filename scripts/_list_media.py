"""The cloud library as the provider lists it now, one medium a line (`gopro-s3-sync list`).

A person's first check that the credentials work: it lists through the configured provider exactly as the
nightly lister does, without touching the queue or the state table.

Example: gopro-s3-sync list --jsonl | head
"""

from __future__ import annotations

import json
import sys
from typing import Any

from scripts._common import EXIT_OK, create_provider, load_context, print_json, setup_logging

NAME = "list_media"


def execute(args: Any) -> int:
    setup_logging(args)
    ctx = load_context(args, provider=args.provider)
    provider = create_provider(ctx)
    items: list[dict[str, Any]] = []
    count = 0
    for item in provider.list_media():
        count += 1
        if args.json:
            items.append(item.as_json())
        elif args.jsonl:
            print(json.dumps(item.as_json(), sort_keys=True), flush=True)
        else:
            size = f"{item.size:>14,}" if item.size is not None else f"{'?':>14}"
            captured = item.captured_at.date().isoformat() if item.captured_at else "????-??-??"
            print(
                f"{item.media_id:<26} {item.media_type.value:<16} {size} {captured}  {item.filename}", flush=True
            )
    if args.json:
        print_json(items)
    elif not args.jsonl and not args.quiet:
        print(f"{count} media", file=sys.stderr)
    return EXIT_OK
