"""The issue-7 transfer comparison: the pipeline's engine vs `rclone copyurl` vs boto3 `upload_fileobj`.

    .venv/bin/python bench/transfer_compare.py                    # 256 MiB and 1 GiB, uncapped and capped, 3 runs
    .venv/bin/python bench/transfer_compare.py --with-4gib        # adds 4 GiB (about 25 more minutes)
    .venv/bin/python bench/transfer_compare.py --sizes-mib 256 --runs 1 --caps 0   # a quick look

Same source, same sink: for each (cap, size) one source server (transfer_bench's, a subprocess serving
deterministic bytes with an optional per-connection bandwidth cap, as a CDN caps one connection) and one moto
server; the contenders run in turn, their order rotated every run (interleaved, so a slow spell of the shared
machine hits all of them), each in a fresh process. Every run records the load average; the summary keeps
medians. Results: bench/results/compare-transfer.json.

Figures per run: throughput (object size / transfer time: for Python contenders the worker's own clock around
the transfer, for rclone the wall time of the process, which includes its ~50 ms start), CPU-seconds per GiB
(the whole process from wait4; `transfer_cpu_s_per_gib` is the transfer alone for the Python contenders, without
interpreter start and imports), peak RSS (the whole process, wait4's ru_maxrss = VmHWM). After each run the object
is checked (size) and deleted with all its versions so moto stays lean.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.machine import LoadSampler, loadavg, machine_info, stamp  # noqa: E402
from bench.procs import MIB, REGION, Server, clean_env, moto_server, run_measured, source_server  # noqa: E402

GIB = 1024 * MIB
BUCKET = "transfer-compare"
CONTENDERS = ("engine", "rclone", "boto3")
CAP_MBPS = 80.0  # 10 MB/s per connection
RESULTS = BENCH / "results" / "compare-transfer.json"


def s3(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION
    ).client("s3", endpoint_url=endpoint, config=Config(response_checksum_validation="when_required"))


def prepare_bucket(endpoint: str) -> None:
    """A versioned bucket, as the archive bucket is (rclone also needs it: it HEADs the version moto names)."""
    client = s3(endpoint)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def check_and_delete(endpoint: str, key: str, size: int) -> bool:
    client = s3(endpoint)
    try:
        stored = int(client.head_object(Bucket=BUCKET, Key=key)["ContentLength"])
    except Exception:
        stored = -1
    for version in client.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", []):
        client.delete_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])
    for upload in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    return stored == size


def rclone_run(url: str, endpoint: str, key: str) -> tuple[list[str], dict[str, str]]:
    """`rclone copyurl` into an S3 remote defined by environment variables only (no config file, no real keys)."""
    env = clean_env(
        {
            "RCLONE_CONFIG": "/dev/null",
            "RCLONE_CONFIG_MOTO_TYPE": "s3",
            "RCLONE_CONFIG_MOTO_PROVIDER": "Other",
            "RCLONE_CONFIG_MOTO_ENDPOINT": endpoint,
            "RCLONE_CONFIG_MOTO_ACCESS_KEY_ID": "bench",
            "RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY": "bench",
            "RCLONE_CONFIG_MOTO_REGION": REGION,
            "RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE": "true",
        }
    )
    return ["rclone", "copyurl", url, f"moto:{BUCKET}/{key}", "--retries", "1", "-q"], env


def measure(contender: str, source: Server, sink: Server, size: int, run: int) -> dict[str, Any]:
    key = f"compare/{contender}-{run}.bin"
    url, endpoint = source.url, sink.url
    if contender == "rclone":
        command, env = rclone_run(url, endpoint, key)
    else:
        command = [sys.executable, str(BENCH / "transfer_workers.py"), contender, "--url", url]
        command += ["--endpoint", endpoint, "--bucket", BUCKET, "--key", key, "--size", str(size)]
        env = clean_env()
    load_before = loadavg()
    source_before, sink_before = source.cpu_s(), sink.cpu_s()
    done = run_measured(command, env)
    source_cpu, sink_cpu = source.cpu_s() - source_before, sink.cpu_s() - sink_before
    inner: dict[str, Any] = {}
    if contender != "rclone" and done.returncode == 0:
        inner = json.loads(done.stdout.strip().splitlines()[-1])
    ok = done.returncode == 0 and check_and_delete(endpoint, key, size)
    seconds = inner.get("transfer_s", done.wall_s)
    cpu_transfer = inner.get("transfer_cpu_s", done.cpu_s)
    gib = size / GIB
    return {
        "contender": contender,
        "run": run,
        "ok": ok,
        "error": None if ok else done.stderr[-800:],
        "seconds": round(seconds, 3),
        "throughput_mib_s": round(size / seconds / MIB, 1),
        "cpu_s": round(done.cpu_s, 2),
        "cpu_s_per_gib": round(done.cpu_s / gib, 2),
        "transfer_cpu_s_per_gib": round(cpu_transfer / gib, 2),
        "peak_rss_mib": round(done.max_rss_mib, 1),
        # moto and the source server's CPU during the run: what the contender's way of calling them costs them.
        "source_cpu_s_per_gib": round(source_cpu / gib, 2),
        "sink_cpu_s_per_gib": round(sink_cpu / gib, 2),
        "process_wall_s": round(done.wall_s, 3),
        "load1_before": round(load_before, 2),
        "load1_after": round(loadavg(), 2),
        **{k: v for k, v in inner.items() if k in ("parts", "part_size", "window", "checksum", "vmhwm_mib")},
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if r["ok"]]
    if not good:
        return {"runs": len(runs), "ok_runs": 0}
    return {
        "runs": len(runs),
        "ok_runs": len(good),
        "median_throughput_mib_s": round(statistics.median(r["throughput_mib_s"] for r in good), 1),
        "min_throughput_mib_s": min(r["throughput_mib_s"] for r in good),
        "max_throughput_mib_s": max(r["throughput_mib_s"] for r in good),
        "median_cpu_s_per_gib": round(statistics.median(r["cpu_s_per_gib"] for r in good), 2),
        "median_transfer_cpu_s_per_gib": round(statistics.median(r["transfer_cpu_s_per_gib"] for r in good), 2),
        "max_peak_rss_mib": max(r["peak_rss_mib"] for r in good),
        "median_source_cpu_s_per_gib": round(statistics.median(r["source_cpu_s_per_gib"] for r in good), 2),
        "median_sink_cpu_s_per_gib": round(statistics.median(r["sink_cpu_s_per_gib"] for r in good), 2),
        "median_peak_rss_mib": round(statistics.median(r["peak_rss_mib"] for r in good), 1),
        "median_load1": round(statistics.median((r["load1_before"] + r["load1_after"]) / 2 for r in good), 2),
    }


def targets(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 7's transfer targets, as ratios measured in this one run."""
    checks: dict[str, Any] = {}
    by = {(g["cap_mbps"], g["size_mib"]): g["summary"] for g in groups}
    for (cap, size), summary in sorted(by.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])):
        engine, rclone, boto = summary.get("engine", {}), summary.get("rclone", {}), summary.get("boto3", {})
        label = f"{'capped' if cap else 'uncapped'} {size} MiB"
        if engine.get("ok_runs") and rclone.get("ok_runs"):
            ratio = engine["median_throughput_mib_s"] / rclone["median_throughput_mib_s"]
            wanted = 3.0 if cap else 1.0
            checks[f"{label}: throughput engine / rclone >= {wanted}"] = {
                "value": round(ratio, 2),
                "met": ratio >= wanted,
            }
        if engine.get("ok_runs") and boto.get("ok_runs"):
            mine, theirs = engine["median_transfer_cpu_s_per_gib"], boto["median_transfer_cpu_s_per_gib"]
            checks[f"{label}: CPU-s/GiB engine <= boto3"] = {"value": [mine, theirs], "met": mine <= theirs}
        if engine.get("ok_runs"):
            rss = engine["max_peak_rss_mib"]
            checks[f"{label}: engine peak RSS <= 256 MiB"] = {"value": rss, "met": rss <= 256}
    for cap in {c for c, _ in by}:
        one, four = by.get((cap, 1024), {}).get("engine", {}), by.get((cap, 4096), {}).get("engine", {})
        if one.get("ok_runs") and four.get("ok_runs"):
            spread = abs(four["max_peak_rss_mib"] - one["max_peak_rss_mib"]) / one["max_peak_rss_mib"]
            label = "capped" if cap else "uncapped"
            checks[f"{label}: engine peak RSS 1 GiB vs 4 GiB within 10 %"] = {
                "value": round(spread * 100, 1),
                "met": spread <= 0.10,
            }
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--with-4gib", action="store_true", help="add 4096 MiB (long: rclone capped ~7 min a run)")
    parser.add_argument("--caps", type=float, nargs="+", default=[0.0, CAP_MBPS], help="Mbit/s; 0 = uncapped")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the (cap, size) groups measured now in an existing results file (a quieter rerun)",
    )
    args = parser.parse_args()
    sizes = sorted(set(args.sizes_mib + ([4096] if args.with_4gib else [])))
    contenders = [c for c in args.contenders if c != "rclone" or shutil.which("rclone")]
    if "rclone" in args.contenders and "rclone" not in contenders:
        print("rclone is not installed (make bench installs it): skipping it", file=sys.stderr)
    report: dict[str, Any] = {"benchmark": "transfer-compare", "started": stamp(), "machine": machine_info()}
    groups = []
    with LoadSampler() as load:
        for cap in args.caps:
            for size_mib in sizes:
                size = size_mib * MIB
                runs = []
                with moto_server() as sink, source_server(size, cap or None) as source:
                    prepare_bucket(sink.url)
                    for run in range(args.runs):
                        order = contenders[run % len(contenders) :] + contenders[: run % len(contenders)]
                        for contender in order:
                            result = measure(contender, source, sink, size, run)
                            runs.append(result)
                            print(
                                json.dumps({"cap_mbps": cap or None, "size_mib": size_mib, **result}), flush=True
                            )
                summary = {c: summarise([r for r in runs if r["contender"] == c]) for c in contenders}
                groups.append({"cap_mbps": cap or None, "size_mib": size_mib, "summary": summary, "runs": runs})
    report["settings"] = {"runs": args.runs, "sizes_mib": sizes, "caps_mbps": args.caps, "contenders": contenders}
    report.update(finished=stamp(), load=load.summary())
    if args.merge and args.output.exists():
        previous = json.loads(args.output.read_text())
        fresh = {(g["cap_mbps"], g["size_mib"]) for g in groups}
        kept = [g for g in previous["groups"] if (g["cap_mbps"], g["size_mib"]) not in fresh]
        groups = kept + groups
        span = {k: previous[k] for k in ("started", "finished", "load", "settings") if k in previous}
        report["earlier_runs"] = [span, *previous.get("earlier_runs", [])]
    groups.sort(key=lambda g: (g["cap_mbps"] or 0, g["size_mib"]))
    report.update(groups=groups, targets=targets(groups))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["targets"], indent=2))
    return 0 if all(r["ok"] for g in groups for r in g["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
