"""`docs/reliability.md`, written by the suite from the outcomes it measured (never typed by hand).

Each verified scenario adds a row (runs of the same scenario are summed); each broken-pipeline proof adds a line
saying which invariant caught which deliberate break. `pytest tests/chaos --chaos-report=PATH` writes the file at
the end of the session (`make chaos-report` does so for the long randomised set too).
"""

from __future__ import annotations

import platform
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.chaos.invariants import Outcome

COLUMNS = ("runs", "nights", "videos", "completed", "deleted at source", "failed → DLQ")
HARM = ("lost", "corrupted", "duplicated", "stuck")
INTRO = " ".join(
    (
        "Every scenario drives the real pipeline (handlers, transfer engine, state store) against a moto server",
        "and the GoPro simulator over real HTTP, then checks the invariants of `tests/chaos/invariants.py`:",
        "every listed video is archived byte for byte (SHA-256 of the S3 object against the source) or recorded",
        "FAILED with its reason and a DLQ message; no multipart upload the pipeline knows of is left open; no key",
        "is uploaded twice; nothing is left IN_PROGRESS. *Lost*, *corrupted*, *duplicated* and *stuck* must be 0",
        "everywhere. *Orphaned* counts multipart uploads started by an invocation that was killed before it",
        "could checkpoint them: invisible to the pipeline, they are removed by the bucket's",
        "AbortIncompleteMultipartUpload lifecycle rule. *Nights* counts nightly runs: a scenario that needs",
        "the next night to recover says so.",
    )
)


@dataclass
class Row:
    family: str
    runs: int = 0
    nights: int = 0
    videos: int = 0
    completed: int = 0
    source_deleted: int = 0
    failed: int = 0
    lost: int = 0
    corrupted: int = 0
    duplicated: int = 0
    stuck: int = 0
    orphaned: int = 0
    violations: int = 0
    in_total: bool = True  # False for the per-family views of randomised nights (each night is in several)

    def add(self, outcome: Outcome, nights: int) -> None:
        self.runs += 1
        self.nights += nights
        self.videos += outcome.videos
        self.completed += outcome.completed
        self.source_deleted += outcome.source_deleted
        self.failed += outcome.failed
        self.lost += outcome.lost
        self.corrupted += outcome.corrupted
        self.duplicated += outcome.duplicated
        self.stuck += outcome.stuck
        self.orphaned += outcome.orphaned_uploads
        self.violations += len(outcome.violations)


@dataclass
class Proof:
    invariant: str
    broken: str
    caught: bool
    evidence: str


FAMILY_ORDER = ("source", "AWS", "process", "hostile input", "random")
POLICY = "## Download policy\n\n" + " ".join(
    (
        "A download is fetched only over https, from `ALLOWED_DOWNLOAD_HOSTS` when it is set (exact names or",
        "`*.domain`), never from a single-label host name nor an internal IP literal (numeric forms included),",
        "and plain http only to a loopback host in local mode (the simulator). Redirects are refused; the URL,",
        "its HEAD URL and any refreshed URL are all checked before a byte is requested (`DownloadPolicy` in",
        "`pipeline/transfer/url_policy.py`). Whether or not hosts are pinned, the download session resolves each",
        "host once and refuses it if any of its addresses is loopback, private, link-local or otherwise",
        "internal, connecting only to the addresses it vetted and checking the peer it reached",
        "(`pipeline/transfer/safe_connect.py`). The hosts the links point to are recorded per run (report,",
        "`sync_status.py`) so production can pin them in `ALLOWED_DOWNLOAD_HOSTS` from facts",
        "(docs/operations.md), and a compromised provider answer or queue message cannot make the downloader",
        "fetch anything else from inside the VPC.",
    )
)


@dataclass
class ReliabilityReport:
    seed: int
    long: bool
    random_nights: int = 0
    rows: OrderedDict[str, Row] = field(default_factory=OrderedDict)
    proofs: list[Proof] = field(default_factory=list)
    known_bugs: dict[str, str] = field(default_factory=dict)  # test name -> why it is a strict xfail
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, scenario: str, family: str, outcome: Outcome, nights: int, *, in_total: bool = True) -> None:
        with self._lock:
            row = self.rows.setdefault(scenario, Row(family, in_total=in_total))
            row.add(outcome, nights)

    def add_proof(self, invariant: str, broken: str, outcome: Outcome, *, about: str = "") -> None:
        """`about`: a phrase of the violation that proves this invariant (the first one is shown otherwise)."""
        matching = [v for v in outcome.violations if about in v]
        evidence = (matching or outcome.violations or ["(no violation reported)"])[0]
        with self._lock:
            self.proofs.append(Proof(invariant, broken, bool(outcome.violations), evidence))

    def render(self, *, passed: int, failed: int, xfailed: int, seconds: float) -> str:
        total = Row("all")
        for row in self.rows.values():
            if not row.in_total:
                continue
            for name in ("runs", "nights", "videos", "completed", "source_deleted", "failed", *HARM, "orphaned"):
                setattr(total, name, getattr(total, name) + getattr(row, name))
        lines = [
            "# Reliability: what the chaos suite measured",
            "",
            "Generated by `tests/chaos` (do not edit by hand): "
            f"`make chaos-report SEED={self.seed} CHAOS_RUNS={self.random_nights}` "
            f"on {datetime.now(UTC):%Y-%m-%d}, "
            f"Python {platform.python_version()}, {sys.platform}; "
            f"{'quick and long randomised sets' if self.long else 'quick set only'}: "
            f"{passed} tests passed, {failed} failed, "
            + (
                f"{xfailed} known bugs in code owned elsewhere (strict xfails, listed at the end)"
                if xfailed
                else "no known bug left open (those the suite found are fixed; `tests/chaos/test_known_bugs.py`"
                " keeps them fixed)"
            )
            + f", {seconds:.0f} s.",
            "",
            INTRO,
            "",
            "| scenario | family | runs | nights | videos | completed | deleted at source | failed → DLQ "
            "| lost | corrupted | duplicated | stuck | orphaned uploads |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        fixed = sorted(
            ((name, row) for name, row in self.rows.items() if row.family != "random"),
            key=lambda item: FAMILY_ORDER.index(item[1].family) if item[1].family in FAMILY_ORDER else 99,
        )
        randomised = sorted((name, row) for name, row in self.rows.items() if row.family == "random")
        for scenario, row in [*fixed, *randomised, ("**total**", total)]:
            lines.append(
                f"| {scenario} | {row.family if row is not total else ''} | {row.runs} | {row.nights} "
                f"| {row.videos} | {row.completed} | {row.source_deleted} | {row.failed} | {row.lost} "
                f"| {row.corrupted} | {row.duplicated} | {row.stuck} | {row.orphaned} |"
            )
        lines += [
            "",
            "## Each invariant fails on a deliberately broken pipeline",
            "",
            "| invariant | how the pipeline was broken | caught | violation reported |",
            "| --- | --- | --- | --- |",
        ]
        for proof in self.proofs:
            evidence = proof.evidence.replace("|", "\\|")[:160]
            lines.append(
                f"| {proof.invariant} | {proof.broken} | {'yes' if proof.caught else '**NO**'} | {evidence} |"
            )
        if self.known_bugs:
            lines += [
                "",
                "## Bugs found in code owned elsewhere (strict xfails)",
                "",
                "Each is a failing test in `tests/chaos/test_known_bugs.py`; it turns red (XPASS) once fixed.",
                "",
            ]
            lines += [f"- `{name}`: {reason}" for name, reason in sorted(self.known_bugs.items())]
        lines += ["", POLICY]
        lines.append("")
        return "\n".join(lines)

    def write(self, path: Path, *, passed: int, failed: int, xfailed: int, seconds: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.render(passed=passed, failed=failed, xfailed=xfailed, seconds=seconds)
        path.write_text(text, encoding="utf-8")
