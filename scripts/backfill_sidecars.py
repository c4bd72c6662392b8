"""`python scripts/backfill_sidecars.py ARGS` is `gopro-s3-sync backfill-sidecars ARGS`.

Kept for the schedule, the docs and people. Logic: scripts/_backfill_sidecars.py; options: scripts/cli/.
"""

import sys
from pathlib import Path

if not __package__:  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.cli.app import run_as_script

if __name__ == "__main__":
    sys.exit(run_as_script("backfill_sidecars"))
