"""The last step of `make demo`: the catalog page of the demo archive, written where the run can point to it.

Why a module of its own: the local runtime (`devtools/local_runtime/`) runs the night; this only reads what the
night left in the (still running) local stack, exactly as `scripts/catalog.py --html` does against AWS, so the
demo shows the way back too. The page goes to `.local/demo/catalog.html` (ignored by git) in the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts._archive import completed_records, load_archive
from scripts._catalog import page

DEMO_CATALOG = Path(__file__).resolve().parents[1] / ".local" / "demo" / "catalog.html"


def write_demo_catalog(pipeline: Any, target: Path = DEMO_CATALOG) -> Path:
    """Writes the catalog page of everything the demo archived; returns its path. A failure here never fails the
    demo's own verdict: the caller prints what this returns, or the reason."""
    settings = pipeline.settings
    records = completed_records(pipeline.app.state, settings.provider)
    media = sorted(
        load_archive(pipeline.client("s3"), settings.bucket_name, records),
        key=lambda m: (m.captured_at or "", m.media_id),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page(media, settings.environment), encoding="utf-8")
    return target
