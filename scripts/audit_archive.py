"""`python scripts/audit_archive.py ARGS` is `gopro-s3-sync audit ARGS`.

Kept for the schedule, the docs and people. The logic is in scripts/_audit_archive.py, the options in scripts/cli/.
"""

import sys
from pathlib import Path

if not __package__:  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.cli.app import run_as_script

if __name__ == "__main__":
    sys.exit(run_as_script("audit_archive"))
