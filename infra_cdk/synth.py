"""Offline synthesis of the example deployments: `python -m infra_cdk.synth [--outdir cdk.out] [config ...]`.

A config is a path or the name of a file in config/examples/ (personal, dev, staging, prod: what CI checks).

Why not `cdk synth`: the checks must run without the CDK CLI, an AWS account or the network. aws-cdk-lib only
needs Node (through jsii) to synthesize. Each configuration gets its own cloud assembly, `cdk.out/<name>/`, which
cfn-lint and checkov then read. The Lambda layer is bundled once and reused (see infra_cdk/bundling.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from infra_cdk.app import build_app

CI_CONFIGS = ("personal", "dev", "staging", "prod")


def synth(config: str, outdir: Path, *, bundle: bool = True) -> Path:
    """Synthesizes one configuration into `outdir/<name>/` and returns the template's path."""
    target = outdir / Path(config).stem
    # Start clean: CDK never deletes superseded assets, and stale templates would be linted and scanned.
    shutil.rmtree(target, ignore_errors=True)
    app, stack = build_app(config, outdir=str(target), bundle=bundle)
    assembly = app.synth()
    return Path(assembly.directory) / stack.template_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=list(CI_CONFIGS))
    parser.add_argument("--outdir", type=Path, default=Path("cdk.out"))
    parser.add_argument(
        "--no-bundle", action="store_true", help="skip building the Lambda assets (templates only, not deployable)"
    )
    args = parser.parse_args(argv)
    for config in args.configs:
        started = time.monotonic()
        template = synth(config, args.outdir, bundle=not args.no_bundle)
        print(f"{config}: {template} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
