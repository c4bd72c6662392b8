"""`gopro-s3-sync local-stack` (`make local-stack`): a local stack that stays up for the other commands.

Why: the demo's stack lives for one run and its ports are never printed, so the scripts (`sync_status.py`,
`enqueue_media.py`, `redrive_dlq.py`) had nothing to talk to. This one starts a moto server and the GoPro
simulator on fixed ports (or free ones with `--moto-port 0 --sim-port 0`, printed), provisions the resources of
`--env` as the CDK stack names them, runs a first night (the demo's library, with one video whose downloads keep
failing until it is in the dead-letter queue, so a redrive has something to move), then keeps five downloaders
polling the queue, as the event source mapping does, so a message the scripts send is archived. It prints the
`export` lines the scripts need (also written to `--env-file` for `source`), and stops cleanly on Ctrl-C or
SIGTERM. A whole session is in docs/operations.md ("A local stack session").

Exit codes: 0 stopped by Ctrl-C/SIGTERM, 2 bad arguments or configuration (a port in use), 1 the stack failed.
The options are those of `gopro-s3-sync local-stack` (scripts/cli/local.py).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from contextlib import redirect_stdout
from pathlib import Path
from types import FrameType
from typing import IO, Any

from devtools.gopro_simulator import GoProSimulator
from devtools.local_runtime.cli import DEMO_OVERRIDES, log_destination, night_progress
from devtools.local_runtime.demo import apply_dead_letter, apply_scenario, demo_library
from devtools.local_runtime.pipeline import FAKE_AWS, LocalPipeline
from devtools.local_runtime.report import gather
from pipeline.config import EnvVar, Settings
from pipeline.providers.gopro.config import GoProEnv
from scripts.cli.errors import EXIT_OK, EXIT_USAGE, ScriptError

DEFAULT_MOTO_PORT = 5000
DEFAULT_SIM_PORT = 8765
DEFAULT_ENV_FILE = Path(".cache/local-stack/env.sh")
DEFAULT_LOG_FILE = Path(".cache/local-stack/local-stack.log")
READY = "local stack ready; Ctrl-C stops it"


class StackError(ScriptError):
    """Ends the command with one line and `exit_code` (the tool's error handling prints it)."""


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m devtools.local_stack` (`make local-stack`): `gopro-s3-sync local-stack`, options and errors
    included (scripts/cli/local.py)."""
    from scripts.cli.errors import run_command
    from scripts.cli.local import local_stack_command

    return run_command(local_stack_command, argv, "python -m devtools.local_stack")


def _check_free(port: int, flag: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(
                f"port {port} is in use (another local stack?): choose {flag} PORT, or {flag} 0 for a free one",
                EXIT_USAGE,
            ) from None


def serve(args: Any, settings: Settings, out: IO[str]) -> int:
    """Starts, provisions, runs the first night, prints the exports, then waits for Ctrl-C or SIGTERM."""
    _check_free(args.moto_port, "--moto-port")
    _check_free(args.sim_port, "--sim-port")
    os.environ.update(FAKE_AWS)  # this process talks to the moto server only
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, _stopper(stopping)) for sig in (signal.SIGINT, signal.SIGTERM)}
    from devtools.moto_server import AtomicMotoServer

    moto = AtomicMotoServer(ip_address="127.0.0.1", port=args.moto_port, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        simulator = GoProSimulator(demo_library(args.videos, args.video_size), port=args.sim_port)
        pipeline = LocalPipeline(
            base_settings=settings.with_overrides(aws_endpoint_url=moto_url),
            aws_endpoint_url=moto_url,
            simulator=simulator,
            settings_overrides=dict(DEMO_OVERRIDES),
        )
        log_file = None if args.verbose else args.log_file
        with log_destination(args, settings) as logs, redirect_stdout(logs):
            pipeline.start()
            halt = None
            try:
                _print_stack(pipeline, moto_url, log_file, out)
                if not args.no_night and not stopping.is_set():
                    _first_night(pipeline, out, plain=args.verbose, log_file=log_file)
                halt = pipeline.serve()
                _print_exports(_exports(pipeline, moto_url), args.env_file, out)
                print(READY, file=out, flush=True)
                while not stopping.wait(0.5):
                    pass
            finally:
                print("stopping the local stack ...", file=out, flush=True)
                if halt is not None:
                    halt()
                pipeline.stop()
    finally:
        moto.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("local stack stopped", file=out, flush=True)
    return EXIT_OK


def _stopper(stopping: threading.Event):  # type: ignore[no-untyped-def]
    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    return stop


def _print_stack(pipeline: LocalPipeline, moto_url: str, log_file: Path | None, out: IO[str]) -> None:
    made = pipeline.resources
    assert made is not None
    sim = pipeline.simulator
    lines = [
        f"local stack (--env {pipeline.settings.environment if pipeline.settings else '?'})",
        f"  AWS (moto server)  {moto_url}",
        f"  GoPro simulator    {sim.base_url} ({len(sim.library)} media)",
        f"  table              {made.table}",
        f"  queue, DLQ         {made.queue_url.rsplit('/', 1)[-1]}, {made.dlq_url.rsplit('/', 1)[-1]}",
        f"  bucket, secret     {made.bucket}, {made.secret_id}",
    ]
    if log_file is not None:
        lines.append(f"  logs               {log_file} (-v shows them here)")
    print("\n".join(lines), file=out, flush=True)


def _first_night(pipeline: LocalPipeline, out: IO[str], *, plain: bool, log_file: Path | None) -> None:
    """The demo's night, plus one video that ends in the dead-letter queue (for the redrive of the session)."""
    import time

    started = time.monotonic()
    print("\na first night:", file=out, flush=True)
    listing = pipeline.list()
    if listing.get("error"):
        raise StackError(f"the first night's listing failed: {listing['error']}")
    apply_scenario(pipeline)
    apply_dead_letter(pipeline)
    progress = night_progress(pipeline, listing, out, plain=plain)
    drained, stats = pipeline.drain(progress=progress)
    progress.finish()
    result = pipeline.result(listing, pipeline.summarise() if drained else {}, drained, stats)
    report = gather(pipeline, result, elapsed_seconds=time.monotonic() - started, log_file=None)
    print("\n".join(report.lines()[1:]), file=out, flush=True)


def _exports(pipeline: LocalPipeline, moto_url: str) -> dict[str, str]:
    """What the scripts need in their environment to use this stack (the names come from --env)."""
    settings = pipeline.settings
    assert settings is not None
    api = pipeline.simulator.base_url
    return {
        EnvVar.AWS_ENDPOINT_URL: moto_url,
        EnvVar.AWS_REGION: settings.aws_region,
        **FAKE_AWS,
        EnvVar.ENVIRONMENT: settings.environment,
        GoProEnv.API_URL: api,
        GoProEnv.AUTH_URL: api,
    }


def _print_exports(exports: dict[str, str], env_file: Path, out: IO[str]) -> None:
    lines = [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text("# written by python -m devtools.local_stack; `source` it\n" + "\n".join(lines) + "\n")
    print(f"\nfor gopro-s3-sync in another shell (or: source {env_file}):", file=out)
    print("\n".join(lines), file=out, flush=True)


if __name__ == "__main__":
    sys.exit(main())
