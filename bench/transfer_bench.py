"""Benchmark of the transfer engine: one large object from a loopback HTTP source into a moto S3 server.

    .venv/bin/python bench/transfer_bench.py                       # 1 GiB with the engine's defaults
    .venv/bin/python bench/transfer_bench.py --size-mib 256 --part-size-mib 8 --window 8
    .venv/bin/python bench/transfer_bench.py --sweep               # part size x window grid, for choosing defaults

Why three processes: moto keeps every uploaded part in memory and the source server holds its own buffers; if
either ran in the measuring process, its RSS would hide the engine's. So the script starts a ThreadedMotoServer
and a range-capable source server as subprocesses, then runs each measured transfer in a fresh worker process
(peak RSS, VmHWM, is per process and never goes down). The worker reports VmHWM (the kernel's peak RSS), its own
sampled VmRSS peak, CPU seconds, throughput and time to first byte, and checks the engine's whole-object CRC32C
against one computed independently over the deterministic source bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BLOCK = MIB + 7  # odd period: no two parts of the object are identical
BUCKET = "transfer-bench"
KEY = "bench/object.bin"


# --- deterministic content ---------------------------------------------------------------------------------


def _block() -> bytes:
    return random.Random(42).randbytes(BLOCK)


def content_chunks(start: int, end: int, block2: bytes | None = None) -> Any:
    """Yield memoryviews of the content's bytes [start, end) without ever materialising it."""
    doubled = memoryview(block2 if block2 is not None else _block() * 2)
    position = start
    while position < end:
        offset = position % BLOCK
        length = min(BLOCK, end - position)
        yield doubled[offset : offset + length]
        position += length


# --- the source server (subprocess) ------------------------------------------------------------------------


def serve_source(port: int, size: int, cap_bytes_per_s: float | None) -> None:
    block2 = _block() * 2
    etag = f'"bench-{size}"'

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _headers(self, status: int, start: int, end: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            self.end_headers()

        def do_HEAD(self) -> None:
            self._headers(200, 0, size)

        def do_GET(self) -> None:
            start, end, status = 0, size, 200
            spec = self.headers.get("Range", "")
            if spec.startswith("bytes="):
                first, _, last = spec[6:].partition("-")
                start = int(first)
                end = min(int(last) + 1, size) if last else size
                status = 206
            self._headers(status, start, end)
            began = time.monotonic()
            sent = 0
            try:
                for chunk in content_chunks(start, end, block2):
                    for offset in range(0, len(chunk), 256 * 1024):
                        piece = chunk[offset : offset + 256 * 1024]
                        self.wfile.write(piece)
                        sent += len(piece)
                        if cap_bytes_per_s:  # a CDN's per-connection bandwidth cap
                            ahead = sent / cap_bytes_per_s - (time.monotonic() - began)
                            if ahead > 0:
                                time.sleep(ahead)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def serve_moto(port: int) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while True:
        time.sleep(3600)


# --- the measured worker -----------------------------------------------------------------------------------


def _proc_status(field: str) -> int | None:
    """A `Vm*` value of /proc/self/status in bytes (Linux); None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import boto3
    from awscrt.checksums import crc32c
    from botocore.config import Config

    from pipeline.transfer import Checksum, S3StreamTransfer, TransferConfig, TransferRequest

    s3 = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="eu-west-1"
    ).client(
        "s3",
        endpoint_url=args.s3_endpoint,
        config=Config(
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=max(10, args.window + 2),
            response_checksum_validation="when_required",
        ),
    )
    defaults = TransferConfig()
    part_size = args.part_size_mib * MIB if args.part_size_mib else defaults.part_size
    window = args.window or defaults.window
    config = TransferConfig(
        part_size=part_size, window=window, max_buffer_bytes=max(defaults.max_buffer_bytes, window * part_size)
    )
    engine = S3StreamTransfer(s3, config=config)
    # moto's CompleteMultipartUpload concatenates and checksums the whole object in Python (about 6 s per GiB
    # here, far slower than S3): timed separately so the streaming phase can be read on its own.
    marks: dict[str, float] = {}
    s3.meta.events.register(
        "before-call.s3.CompleteMultipartUpload", lambda **_kw: marks.__setitem__("complete", time.monotonic())
    )
    s3.meta.events.register(
        "after-call.s3.CompleteMultipartUpload", lambda **_kw: marks.__setitem__("completed", time.monotonic())
    )
    source_url = f"{args.source}/media/object.bin?X-Amz-Signature=bench"
    request = TransferRequest(
        url=source_url,
        head_url=source_url,
        bucket=BUCKET,
        key=KEY,
        expected_size=args.size,
        content_type="video/mp4",
    )

    baseline = _proc_status("VmRSS")
    peak_sampled = [baseline or 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak_sampled[0] = max(peak_sampled[0], _proc_status("VmRSS") or 0)
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    result = engine.transfer(request)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    sampler.join()
    peak_hwm = _proc_status("VmHWM")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    reference = 0
    for chunk in content_chunks(0, args.size):
        reference = crc32c(chunk, reference)
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    complete_s = marks.get("completed", 0.0) - marks.get("complete", 0.0)
    streaming_s = result.duration_s - complete_s
    return {
        "size_bytes": args.size,
        "part_size_bytes": config.part_size,
        "window": config.window,
        "mode": result.mode,
        "parts": result.parts,
        "duration_s": round(result.duration_s, 3),
        "throughput_mib_s": round(result.throughput_bytes_per_s / MIB, 1),
        "throughput_mbps": round(result.throughput_bytes_per_s * 8 / 1e6, 1),
        "complete_s": round(complete_s, 3),
        "streaming_throughput_mib_s": round(args.size / streaming_s / MIB, 1),
        "time_to_first_byte_s": round(result.time_to_first_byte_s or 0.0, 4),
        "cpu_s": round(cpu_s, 2),
        "cpu_user_s": round(cpu_after.ru_utime - cpu_before.ru_utime, 2),
        "cpu_system_s": round(cpu_after.ru_stime - cpu_before.ru_stime, 2),
        "cpu_s_per_gib": round(cpu_s / (args.size / (1024 * MIB)), 2),
        "rss_before_transfer_mib": round((baseline or 0) / MIB, 1),
        "peak_rss_mib": round((peak_hwm or max_rss) / MIB, 1),
        "peak_rss_sampled_mib": round(peak_sampled[0] / MIB, 1),
        "ru_maxrss_mib": round(max_rss / MIB, 1),
        "checksum": str(result.checksum),
        "checksum_verified": result.checksum == Checksum.crc32c(reference),
        "source_requests": result.source_requests,
    }


# --- orchestration -----------------------------------------------------------------------------------------


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def measure(
    args: argparse.Namespace, s3_endpoint: str, source: str, part_size_mib: int, window: int
) -> dict[str, Any]:

    command = [
        sys.executable,
        __file__,
        "--worker",
        "--size",
        str(args.size),
        "--s3-endpoint",
        s3_endpoint,
        "--source",
        source,
        "--part-size-mib",
        str(part_size_mib),
        "--window",
        str(window),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=3600)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    s3_client(s3_endpoint).delete_object(
        Bucket=BUCKET, Key=KEY
    )  # moto holds objects in memory; keep it lean between runs
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-size-mib", type=int, default=0, help="0: the engine's default")
    parser.add_argument("--window", type=int, default=0, help="0: the engine's default")
    parser.add_argument("--cap-mbps", type=float, default=0.0, help="per-connection bandwidth cap of the source")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="grid of part sizes x windows")
    parser.add_argument("--output", type=Path, default=None)
    # internal modes
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-source", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--serve-moto", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--s3-endpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--source", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_source:
        serve_source(args.serve_source, args.size, args.cap_mbps * 1e6 / 8 if args.cap_mbps else None)
        return 0
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return 0
    if args.worker:
        print(json.dumps(run_worker(args)))
        return 0

    sys.path.insert(0, str(ROOT))

    from devtools.net import free_port, wait_for_port
    from pipeline.transfer import TransferConfig

    args.size = args.size_mib * MIB
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    moto_port, source_port = free_port(), free_port()
    servers = [
        subprocess.Popen([sys.executable, __file__, "--serve-moto", str(moto_port)], env=env),
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-source",
                str(source_port),
                "--size",
                str(args.size),
                "--cap-mbps",
                str(args.cap_mbps),
            ]
        ),
    ]
    try:
        wait_for_port(moto_port)
        wait_for_port(source_port)
        s3_endpoint, source = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{source_port}"
        s3_client(s3_endpoint).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        defaults = TransferConfig()
        if args.sweep:
            grid = [(p, w) for p in (8, 16, 32) for w in (2, 4, 8)]
        else:
            grid = [(args.part_size_mib or defaults.part_size // MIB, args.window or defaults.window)]
        runs = []
        for part_size_mib, window in grid:
            for _ in range(args.runs):
                run = measure(args, s3_endpoint, source, part_size_mib, window)
                print(json.dumps(run), file=sys.stderr)
                runs.append(run)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)

    report = {
        "benchmark": "transfer",
        "size_mib": args.size_mib,
        "cap_mbps": args.cap_mbps or None,
        "rss_budget_mib": 256,
        "within_budget": all(r["peak_rss_mib"] < 256 for r in runs),
        "all_checksums_verified": all(r["checksum_verified"] for r in runs),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "summary": {
            "median_throughput_mib_s": statistics.median(r["throughput_mib_s"] for r in runs),
            "median_streaming_throughput_mib_s": statistics.median(r["streaming_throughput_mib_s"] for r in runs),
            "median_cpu_s_per_gib": statistics.median(r["cpu_s_per_gib"] for r in runs),
            "max_peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        },
        "runs": runs,
    }
    label = f"{args.size_mib // 1024}GiB" if args.size_mib % 1024 == 0 else f"{args.size_mib}MiB"
    suffix = "-sweep" if args.sweep else ""
    cap = f"-cap{args.cap_mbps:g}mbps" if args.cap_mbps else ""
    output = args.output or ROOT / "bench" / "results" / f"transfer-{label}{cap}{suffix}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    # A sweep deliberately tries combinations beyond the budget; a single configuration must stay inside it.
    return 0 if report["all_checksums_verified"] and (args.sweep or report["within_budget"]) else 1


if __name__ == "__main__":
    sys.exit(main())
