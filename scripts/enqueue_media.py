"""`python scripts/enqueue_media.py ARGS` is `gopro-s3-sync enqueue ARGS`.

Kept for the schedule, the docs and people. The logic is in scripts/_enqueue_media.py, the options in scripts/cli/.
"""

import sys
from pathlib import Path

if not __package__:  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.cli.app import run_as_script

if __name__ == "__main__":
    sys.exit(run_as_script("enqueue_media"))
