"""The issue-7 end-to-end benchmark: 200 videos of 64 MiB through the whole pipeline on this machine.

    .venv/bin/python bench/e2e_bench.py                      # 200 x 64 MiB
    .venv/bin/python bench/e2e_bench.py --videos 20          # a quick look

`LocalPipeline` (what `make demo` runs: lister -> SQS -> five downloaders -> summary) against
a moto server and a GoPro simulator, each in its own process. Measured: wall time from the listing to the
published report, throughput, and AWS calls per video (botocore hooks). The local runtime's own calls (the
consumer threads' ReceiveMessage/DeleteMessage standing in for Lambda's event source mapping, the drain loop's
GetQueueAttributes standing in for the CloudWatch alarm) are counted apart: in AWS the Lambda service and
CloudWatch make them, at a cost that does not grow with the number of videos. Results: bench/results/e2e.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.aws_calls import AwsCallCounter  # noqa: E402
from bench.machine import LoadSampler, machine_info, stamp  # noqa: E402
from bench.procs import FAKE_AWS, MIB, clean_env, moto_server  # noqa: E402
from devtools.local_runtime import LocalPipeline  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.providers.gopro.config import GoProEnv  # noqa: E402

RESULTS = BENCH / "results" / "e2e.json"
# Made by the local runtime in place of AWS services (see the module docstring), per thread kind.
RUNTIME_OPERATIONS = {"sqs.ReceiveMessage", "sqs.DeleteMessage", "sqs.ChangeMessageVisibility"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.update(FAKE_AWS)
    report: dict[str, Any] = {"benchmark": "e2e", "started": stamp(), "machine": machine_info()}
    sim = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "sim_server.py"),
            "--videos",
            str(args.videos),
            "--size-mib",
            str(args.size_mib),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    try:
        assert sim.stdout is not None
        info = json.loads(sim.stdout.readline())
        with moto_server() as sink, LoadSampler() as load:
            base = Settings.from_env({}).with_env(
                {
                    GoProEnv.CLIENT_ID: info["client_id"],
                    GoProEnv.CLIENT_SECRET: info["client_secret"],
                    GoProEnv.REFRESH_TOKEN: info["refresh_token"],
                }
            )
            pipeline = LocalPipeline(
                base_settings=base, aws_endpoint_url=sink.url, api_url=info["base_url"], retry_delay=0
            ).start()
            logging.getLogger().setLevel(logging.WARNING)
            try:
                counter = AwsCallCounter()
                sink_cpu = sink.cpu_s()
                began = time.monotonic()
                result = pipeline.run(timeout=3600)
                wall = time.monotonic() - began
                sink_cpu = sink.cpu_s() - sink_cpu
                counter.hook()
            finally:
                pipeline.stop()
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    total_bytes = args.videos * args.size_mib * MIB
    runtime_calls = sum(
        n
        for (thread, name), n in counter.by_thread.items()
        if name in RUNTIME_OPERATIONS or (name == "sqs.GetQueueAttributes" and thread == "MainThread")
    )
    pipeline_calls = counter.total - runtime_calls
    statuses = result.statuses
    report.update(
        finished=stamp(),
        load=load.summary(),
        videos=args.videos,
        size_mib=args.size_mib,
        ok=result.ok,
        statuses=statuses,
        wall_s=round(wall, 1),
        throughput_mib_s=round(total_bytes / wall / MIB, 1),
        videos_per_hour=round(args.videos / wall * 3600),
        pipeline_aws_calls=pipeline_calls,
        pipeline_aws_calls_per_video=round(pipeline_calls / args.videos, 2),
        runtime_emulation_calls=runtime_calls,
        aws_calls_by_operation=counter.snapshot(),
        moto_cpu_s=round(sink_cpu, 1),
        report_subject=(result.report_text or "").split("\n", 1)[0],
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
