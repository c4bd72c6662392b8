"""`make bench`: every issue-7 benchmark in turn, then the tables of docs/performance.md.

    .venv/bin/python bench/run_all.py [--with-4gib] [--runs N]

Each benchmark runs in a process of its own (they hold GiBs in moto); one failing does not stop the others,
and the exit status says whether all passed. Takes about 35 minutes on 2 vCPUs, about 25 more with --with-4gib.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-4gib", action="store_true", help="add the 4 GiB transfer cases")
    parser.add_argument("--runs", type=int, default=3, help="runs per transfer contender and case")
    parser.add_argument("--only", nargs="+", choices=("transfer", "listing", "e2e"), default=None)
    args = parser.parse_args()
    steps = {
        "transfer": ["transfer_compare.py", "--runs", str(args.runs)]
        + (["--with-4gib"] if args.with_4gib else []),
        "listing": ["listing_bench.py"],
        "e2e": ["e2e_bench.py"],
    }
    failed = []
    for name, command in steps.items():
        if args.only and name not in args.only:
            continue
        began = time.monotonic()
        print(f"== {name}: {' '.join(command)}", flush=True)
        done = subprocess.run([sys.executable, str(BENCH / command[0]), *command[1:]], check=False)
        print(f"== {name}: exit {done.returncode} after {time.monotonic() - began:.0f} s", flush=True)
        if done.returncode:
            failed.append(name)
    subprocess.run([sys.executable, str(BENCH / "report.py")], check=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
