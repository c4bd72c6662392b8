"""`python scripts/estimate_cost.py ARGS` is `gopro-s3-sync cost ARGS`.

Kept for the schedule, the docs and people. The logic is in scripts/_estimate_cost.py, the options in scripts/cli/.
"""

import sys
from pathlib import Path

if not __package__:  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.cli.app import run_as_script

if __name__ == "__main__":
    sys.exit(run_as_script("estimate_cost"))
