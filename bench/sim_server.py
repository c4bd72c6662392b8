"""A GoPro simulator in a process of its own, for the end-to-end benchmark.

    python bench/sim_server.py --videos 200 --size-mib 64

Why a separate process: the simulator generates its content (SHAKE-128, about 600 MB/s of CPU) for every byte
downloaded; inside the pipeline's process it would compete with the downloaders for one GIL, which a real CDN
does not. Prints one JSON line (base URL and credentials) once it listens, then serves until terminated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.gopro_simulator import MIB, GoProSimulator, SimMedia, SimulatorConfig


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--size-mib", type=int, default=64)
    args = parser.parse_args()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    media = [
        SimMedia(
            id=f"e2{index:022x}",
            size=args.size_mib * MIB,
            captured_at=start + timedelta(minutes=index),
            created_at=start + timedelta(minutes=index),
        )
        for index in range(args.videos)
    ]
    sim = GoProSimulator(SimulatorConfig(media=media, access_token_ttl=60 * 86400, url_ttl=6 * 3600)).start()
    creds = sim.credentials
    print(
        json.dumps(
            {
                "base_url": sim.base_url,
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "refresh_token": creds.refresh_token,
            }
        ),
        flush=True,
    )
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
