"""Run the simulator on its own: `python -m devtools.gopro_simulator --port 8765 --videos 12 --seed 1`.

Why: the local runtime (`make demo`) and benchmarks need a GoPro cloud in another process; this prints the base
URL and the (fake, generated) credentials a client should use, as shell `export` lines, then serves until
interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from devtools.gopro_simulator.config import SimulatorConfig, parse_size
from devtools.gopro_simulator.faults import AbsurdKind, AbsurdValue, FaultRule, ShortPage
from devtools.gopro_simulator.library import every_type_library, generate_library
from devtools.gopro_simulator.server import GoProSimulator


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m devtools.gopro_simulator", description=__doc__)
    parser.add_argument("--host", default=defaults.host, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="library, content and credential seed")
    parser.add_argument("--videos", type=int, default=defaults.videos, help="Video/TimeLapseVideo media")
    parser.add_argument("--photos", type=int, default=defaults.photos, help="Photo/Burst/TimeLapse media")
    parser.add_argument("--video-size", type=_size, default=defaults.video_size, help="each video file, e.g. 5MB")
    parser.add_argument("--photo-size", type=_size, default=defaults.photo_size, help="each photo, e.g. 300KB")
    parser.add_argument("--size-jitter", type=float, default=defaults.size_jitter, help="0.1: sizes vary +-10%%")
    parser.add_argument("--not-ready-fraction", type=float, default=defaults.not_ready_fraction)
    parser.add_argument("--bandwidth", type=_size, default=None, help="cap per response in bytes/s, e.g. 10MB")
    parser.add_argument("--url-ttl", type=int, default=defaults.url_ttl, help="pre-signed link lifetime (s)")
    parser.add_argument("--access-token-ttl", type=int, default=defaults.access_token_ttl)
    parser.add_argument("--rotate-refresh-tokens", action="store_true")
    parser.add_argument("--repeat-last-item", action="store_true", help="the real API's paging quirk")
    parser.add_argument("--content-host", default=None, help="host name for content links (e.g. localhost)")
    parser.add_argument("--client-id", default=None)
    parser.add_argument("--client-secret", default=None)
    parser.add_argument("--refresh-token", default=None)
    parser.add_argument("--every-type", action="store_true", help="add one medium of each of the 16 types")
    parser.add_argument(
        "--short-pages", type=int, default=0, metavar="N", help="the next N listing answers come back short"
    )
    parser.add_argument(
        "--absurd-size", action="store_true", help="list the first medium of each page with file_size 10**15"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of export lines")
    parser.add_argument("--verbose", action="store_true", help="one line per request on stderr (no tokens)")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    config = _base_config(args)
    faults: list[FaultRule] = []
    if args.short_pages:
        faults.append(ShortPage(count=args.short_pages))
    if args.absurd_size:
        faults.append(AbsurdValue(AbsurdKind.HUGE_SIZE))
    if args.every_type:
        config = config.with_overrides(media=[*generate_library(config), *every_type_library()])
    return config.with_overrides(faults=faults) if faults else config


def _base_config(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        videos=args.videos,
        photos=args.photos,
        video_size=args.video_size,
        photo_size=args.photo_size,
        size_jitter=args.size_jitter,
        not_ready_fraction=args.not_ready_fraction,
        bandwidth=args.bandwidth,
        url_ttl=args.url_ttl,
        access_token_ttl=args.access_token_ttl,
        rotate_refresh_tokens=args.rotate_refresh_tokens,
        repeat_last_item=args.repeat_last_item,
        content_host=args.content_host,
        client_id=args.client_id,
        client_secret=args.client_secret,
        refresh_token=args.refresh_token,
        log_requests=args.verbose,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Handlers first: whoever reads the printed URL may signal us right away.
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sim = GoProSimulator(config_from_args(args)).start()
    creds = sim.credentials
    summary = {
        "base_url": sim.base_url,
        "content_base_url": sim.content_base_url,
        "media": len(sim.library),
        "total_bytes": sum(m.total_size for m in sim.library),
        **sim.env(),
        "GOPRO_ACCESS_TOKEN": creds.access_token,
        "GOPRO_USERNAME": creds.username,
        "GOPRO_PASSWORD": creds.password,
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(f"# GoPro simulator on {sim.base_url} ({summary['media']} media, {summary['total_bytes']} bytes)")
        print("# Fake credentials, generated for this simulator only:")
        for name, value in summary.items():
            if name.isupper():
                print(f"export {name}={value}")
        sys.stdout.flush()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
