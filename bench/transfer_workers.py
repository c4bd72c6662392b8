"""The Python contenders of the transfer comparison, each run in a process of its own by `transfer_compare`.

    python bench/transfer_workers.py engine --url URL --endpoint S3 --bucket B --key K --size N
    python bench/transfer_workers.py boto3  --url URL --endpoint S3 --bucket B --key K --size N

`engine` is the pipeline's `S3StreamTransfer` with the pipeline's default settings (what the downloader uses);
`boto3` is `upload_fileobj` reading a streamed `requests` response (`resp.raw`) with boto3's default
TransferConfig, the usual way to pipe an HTTP download into S3 with the SDK. Both get the same S3 client
configuration. The worker prints one JSON line: its own timing of the transfer (without interpreter start and
imports), the CPU seconds of the transfer alone, and VmHWM.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _vm(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def s3_client(endpoint: str, pool: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="eu-west-1"
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 5},
            max_pool_connections=pool,
            response_checksum_validation="when_required",
        ),
    )


def run_engine(args: argparse.Namespace) -> dict[str, Any]:
    from pipeline.config import Settings
    from pipeline.transfer import S3StreamTransfer, TransferConfig, TransferRequest

    settings = Settings()
    part_size = args.part_size_mib * 1024 * 1024 if args.part_size_mib else settings.part_size_bytes
    window = args.window or settings.transfer_window
    config = TransferConfig.from_settings(settings, part_size=part_size, window=window)
    engine = S3StreamTransfer(s3_client(args.endpoint, max(20, window + 2)), config=config)
    request = TransferRequest(
        url=args.url, head_url=args.url, bucket=args.bucket, key=args.key, expected_size=args.size
    )
    result = engine.transfer(request)
    return {
        "parts": result.parts,
        "checksum": str(result.checksum),
        "part_size": config.part_size,
        "window": window,
    }


def run_boto3(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    s3 = s3_client(args.endpoint, 20)
    with requests.get(args.url, stream=True, timeout=(5, 60)) as response:
        response.raise_for_status()
        s3.upload_fileobj(response.raw, args.bucket, args.key)
    return {}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("contender", choices=("engine", "boto3"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--part-size-mib", type=int, default=0)
    parser.add_argument("--window", type=int, default=0)
    args = parser.parse_args()
    import boto3  # noqa: F401  (imports before the clock starts, for both contenders alike)
    import requests  # noqa: F401

    rss_before = _vm("VmRSS")
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    extra = run_engine(args) if args.contender == "engine" else run_boto3(args)
    took = time.monotonic() - began
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    print(
        json.dumps(
            {
                "transfer_s": round(took, 3),
                "transfer_cpu_s": round(cpu, 3),
                "rss_before_mib": round(rss_before, 1),
                "vmhwm_mib": round(_vm("VmHWM"), 1),
                **extra,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
