"""Offline synthesis of every environment: `python -m infra_cdk.synth [--outdir cdk.out] [env ...]`.

Why not `cdk synth`: the checks must run without the CDK CLI, an AWS account or the network. aws-cdk-lib only
needs Node (through jsii) to synthesize. Each environment gets its own cloud assembly, `cdk.out/<env>/`, which
cfn-lint and checkov then read. The Lambda layer is bundled once and reused (see infra_cdk/bundling.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from infra_cdk.app import build_app
from pipeline import resources


def synth(environment: str, outdir: Path, *, bundle: bool = True) -> Path:
    """Synthesizes one environment into `outdir/<env>/` and returns the template's path."""
    target = outdir / environment
    # Start clean: CDK never deletes superseded assets, and stale templates would be linted and scanned.
    shutil.rmtree(target, ignore_errors=True)
    app, stack = build_app(environment, outdir=str(target), bundle=bundle)
    assembly = app.synth()
    return Path(assembly.directory) / stack.template_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environments", nargs="*", default=list(resources.ENVIRONMENTS))
    parser.add_argument("--outdir", type=Path, default=Path("cdk.out"))
    parser.add_argument(
        "--no-bundle", action="store_true", help="skip building the Lambda assets (templates only, not deployable)"
    )
    args = parser.parse_args(argv)
    for environment in args.environments:
        started = time.monotonic()
        template = synth(environment, args.outdir, bundle=not args.no_bundle)
        print(f"{environment}: {template} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
