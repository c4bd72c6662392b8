"""Writes the tables of docs/performance.md from bench/results/*.json.

Only the regions between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` are replaced (machine, transfer,
listing, e2e); the prose around them is written by hand and says what the numbers mean. A results file that is
missing leaves its region as it was.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DOC = BENCH.parent / "docs" / "performance.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _machine(report: dict[str, Any]) -> str:
    m, load = report["machine"], report.get("load", {})
    return (
        f"{m['nproc']} vCPU {m['cpu_model']}, {m['mem_total_gib']} GiB, Python {m['python']}, "
        f"rclone {m['rclone']}; "
        f"{report['started']} to {report['finished']}; 1-min load average during the run "
        f"{load.get('load1_min')} to {load.get('load1_max')} (median {load.get('load1_median')})"
    )


def _earlier(report: dict[str, Any]) -> str:
    """The runs a `--merge` kept groups from."""
    spans = [
        f"{e['started']} to {e['finished']} (load {e.get('load', {}).get('load1_min')} to "
        f"{e.get('load', {}).get('load1_max')})"
        for e in report.get("earlier_runs", [])
    ]
    return f"; groups kept from earlier runs: {', '.join(spans)}" if spans else ""


def machine_section() -> str | None:
    lines = []
    for name, label in (
        ("compare-transfer.json", "transfer"),
        ("listing.json", "listing"),
        ("e2e.json", "end to end"),
    ):
        report = _load(name)
        if report:
            lines.append(f"- **{label}** (`bench/results/{name}`): {_machine(report)}{_earlier(report)}")
    return "\n".join(lines) or None


def transfer_section() -> str | None:
    report = _load("compare-transfer.json")
    if not report:
        return None
    out = []
    for group in report["groups"]:
        cap = f"capped at {group['cap_mbps']:g} Mbit/s per connection" if group["cap_mbps"] else "uncapped"
        rows = []
        for contender, s in group["summary"].items():
            if not s.get("ok_runs"):
                rows.append([contender, f"0 of {s.get('runs')} runs succeeded", "", "", "", "", ""])
                continue
            rows.append(
                [
                    f"**{contender}**",
                    f"**{s['median_throughput_mib_s']}** "
                    f"({s['min_throughput_mib_s']}-{s['max_throughput_mib_s']})",
                    s["median_cpu_s_per_gib"],
                    s["median_transfer_cpu_s_per_gib"],
                    s["max_peak_rss_mib"],
                    f"{s['median_source_cpu_s_per_gib']} / {s['median_sink_cpu_s_per_gib']}",
                    s["median_load1"],
                ]
            )
        header = [
            "contender",
            "MiB/s, median (min-max)",
            "CPU-s/GiB (process)",
            "CPU-s/GiB (transfer)",
            "peak RSS MiB",
            "source / moto CPU-s/GiB",
            "load",
        ]
        runs = group["summary"][next(iter(group["summary"]))]["runs"]
        out.append(f"**{group['size_mib']} MiB, {cap}** ({runs} runs each, interleaved)\n\n{_table(header, rows)}")
    targets = [
        [name, json.dumps(t["value"]), "met" if t["met"] else "**not met**"]
        for name, t in report["targets"].items()
    ]
    out.append("**Targets (ratios from this one run)**\n\n" + _table(["target", "measured", ""], targets))
    return "\n\n".join(out)


def listing_section() -> str | None:
    report = _load("listing.json")
    if not report:
        return None
    out = []
    for library in report["libraries"]:
        rows = []
        for n in library["nights"]:
            per_video = n["aws_calls_per_listed_video"]
            rows.append(
                [
                    n["night"],
                    n["mode"],
                    n["listed"],
                    n["enqueued"],
                    n["provider_calls"],
                    n["aws_calls"],
                    "" if per_video is None else per_video,
                    n["wall_s"],
                    ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in n["aws_calls_by_operation"].items()),
                ]
            )
        header = [
            "night",
            "mode",
            "listed",
            "queued",
            "provider calls",
            "AWS calls",
            "AWS/video",
            "wall s",
            "AWS calls by operation",
        ]
        out.append(f"**{library['videos']:,} videos**\n\n{_table(header, rows)}")
    return "\n\n".join(out)


def e2e_section() -> str | None:
    r = _load("e2e.json")
    if not r:
        return None
    rows = [
        ["videos", f"{r['videos']} x {r['size_mib']} MiB"],
        ["all archived, report published", f"{r['ok']} ({r['report_subject']})"],
        ["wall time, listing to report", f"{r['wall_s']} s"],
        ["throughput (5 downloaders together)", f"{r['throughput_mib_s']} MiB/s"],
        ["AWS calls by the pipeline, per video", r["pipeline_aws_calls_per_video"]],
        [
            "calls of the local runtime's stand-ins (event source mapping, drain alarm)",
            r["runtime_emulation_calls"],
        ],
        ["moto's CPU", f"{r['moto_cpu_s']} s"],
        ["AWS calls by operation", ", ".join(f"{k} {v}" for k, v in r["aws_calls_by_operation"].items())],
    ]
    return _table(["", ""], rows)


def main() -> int:
    text = DOC.read_text()
    for name, build in (
        ("machine", machine_section),
        ("transfer", transfer_section),
        ("listing", listing_section),
        ("e2e", e2e_section),
    ):
        body = build()
        if body is None:
            continue
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            print(f"docs/performance.md has no bench:{name} region", file=sys.stderr)
            continue
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
