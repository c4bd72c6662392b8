"""The pieces of the report's text: sizes, times, the listing's and the backlog's notes, and runbook references.

Runbook references go through `runbook(section)`, and `section` must be one of `RUNBOOK_SECTIONS`, each a part
of a real heading of docs/runbook.md (a test parses the headings): a report never sends a person to a section
that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.clock import parse_iso_utc

PINNING_DOC = 'docs/operations.md, "Pinning the download hosts"'
RUNBOOK_DOC = "docs/runbook.md"
# Every runbook section a report may name (each is contained in one heading of docs/runbook.md).
RUNBOOK_SECTIONS: tuple[str, ...] = (
    "gopro-sync-lister-failed",
    "gopro-sync-authentication-failures",
    "gopro-sync-dlq-not-empty",
    "Failed media",
    "Not finished",
    "Waiting for a later night",
    "An incomplete listing",
)


def runbook(section: str) -> str:
    """`docs/runbook.md, "<section>"`; refuses a section the runbook does not have."""
    if section not in RUNBOOK_SECTIONS:
        raise ValueError(f"no runbook section {section!r}")
    return f'{RUNBOOK_DOC}, "{section}"'


def size(n: int) -> str:
    """Bytes as a person reads them, in decimal units as AWS bills (1 GB = 10^9 bytes): the report, the night
    plan and `status` say sizes the same way."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # unreachable: TB returns above


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def when(text: str | None) -> str:
    """An ISO time as `2026-03-01 02:00 UTC` (a date stays a date; anything unreadable is shown as it is)."""
    if not text:
        return "?"
    if len(text) == 10:
        return text
    try:
        return f"{parse_iso_utc(text):%Y-%m-%d %H:%M} UTC"
    except ValueError:
        return text


def _int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def backlog_figures(notes: Mapping[str, Any]) -> dict[str, Any]:
    """The backlog helper's figures from the notes (`backlog`: waiting, waiting_bytes, queued_from_backlog,
    nightly_budget_bytes, budget_source, ends_at, expired); an empty dict when the notes have none."""
    backlog = notes.get("backlog")
    if not isinstance(backlog, Mapping):
        return {}
    return {
        "waiting": _int(backlog.get("waiting")) or 0,
        "waiting_bytes": _int(backlog.get("waiting_bytes")) or 0,
        "queued_from_backlog": _int(backlog.get("queued_from_backlog")) or 0,
        "nightly_budget_bytes": _int(backlog.get("nightly_budget_bytes")),
        "budget_source": backlog.get("budget_source") if isinstance(backlog.get("budget_source"), str) else None,
        "ends_at": backlog.get("ends_at") if isinstance(backlog.get("ends_at"), str) else None,
        "expired": _int(backlog.get("expired")) or 0,
    }


def library_figures(notes: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """(media in the library as last fully listed, when), from the notes' `library`; (None, None) without."""
    library = notes.get("library")
    if not isinstance(library, Mapping):
        return None, None
    listed_at = library.get("listed_at")
    return _int(library.get("size")), listed_at if isinstance(listed_at, str) else None


def backlog_lines(notes: Mapping[str, Any]) -> list[str]:
    """What waits for later nights and when the backlog should end (nothing without backlog notes)."""
    figures = backlog_figures(notes)
    if not figures:
        return []
    lines: list[str] = []
    if figures["waiting"]:
        budget = figures["nightly_budget_bytes"]
        source = f", {figures['budget_source']}" if figures["budget_source"] else ""
        per_night = f"; a night queues about {size(budget)}{source}" if budget else ""
        ends = f", should end about {when(figures['ends_at'])}" if figures["ends_at"] else ""
        lines.append(
            f"  waiting for later nights: {figures['waiting']:,}"
            f" ({size(figures['waiting_bytes'])}){ends}{per_night}"
            f" ({runbook('Waiting for a later night')})"
        )
    else:
        lines.append("  waiting for later nights: 0 (the backlog is done)")
    if figures["expired"]:
        lines.append(f"  messages expired unprocessed, queued again: {figures['expired']}")
    return lines


def _names(counts: Any) -> str:
    if not isinstance(counts, Mapping) or not counts:
        return ""
    shown = sorted(counts.items(), key=lambda pair: (-int(pair[1]), str(pair[0])))
    return " (" + ", ".join(f"{name} {count}" for name, count in shown) + ")"


def _total(counts: Any) -> int:
    return sum(int(v) for v in counts.values()) if isinstance(counts, Mapping) else 0


def listing_lines(notes: Mapping[str, Any]) -> list[str]:
    """The report's lines about what the listing skipped and whether its walk was complete (none if nothing)."""
    lines: list[str] = []
    incomplete = notes.get("incomplete")
    if incomplete:
        lines += [
            "",
            f"The listing was INCOMPLETE: {incomplete}.",
            "  The cursor was not moved and this is no finished reconcile: the next night lists them again"
            f" ({runbook('An incomplete listing')}).",
        ]
    details: list[str] = []
    if _total(notes.get("left_out_types")):
        details.append(
            f"  not archived (settings):  {_total(notes['left_out_types'])}{_names(notes['left_out_types'])}"
        )
    if _total(notes.get("unknown_types")):
        details.append(
            f"  unknown type, skipped:    {_total(notes['unknown_types'])}{_names(notes['unknown_types'])}"
        )
    if _total(notes.get("not_ready")):
        details.append(
            f"  still processing in the cloud: {_total(notes['not_ready'])}{_names(notes['not_ready'])}"
            " — archived on a later night once ready"
        )
    unreadable = int(notes.get("unreadable_count") or 0)
    if unreadable:
        details.append(f"  unreadable, skipped:      {unreadable} (impossible values in the listing)")
        for pair in notes.get("unreadable") or []:
            if isinstance(pair, list) and len(pair) == 2:
                details.append(f"    {pair[0]}: {pair[1]}")
        if unreadable > len(notes.get("unreadable") or []):
            details.append(f"    … and {unreadable - len(notes['unreadable'])} more (see the lister's log)")
    if details:
        lines += ["", "Skipped by the listing:", *details]
    return lines
