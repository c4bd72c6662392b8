"""Lambda code and dependency assets, built without Docker.

Why local bundling: synthesis must work on a laptop and in a user's CI without Docker. The function code is the
`pipeline/` package alone (copied, without caches); the dependencies from requirements.txt go into one Lambda
layer, installed by pip for the Lambda platform (`--platform manylinux2014_aarch64 --only-binary=:all:`), so the
wheels match Lambda's arm64 Python 3.12 whatever machine synthesizes. Every dependency (awscrt included) ships
aarch64 wheels; arm64 is about 20% cheaper per GB-second than x86_64 for this I/O-bound work.

The layer is cached under `.cache/lambda-layer/<hash>/`, keyed by the requirements file, the platform and the
Python version: repeated synths (the three environments, the tests) install once. The layer asset's hash is the
same key, so CloudFormation sees a new layer version only when the requirements change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from pipeline import version

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINE_DIR = REPO_ROOT / "pipeline"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
CACHE_DIR = REPO_ROOT / ".cache" / "lambda-layer"

ARCHITECTURE = lambda_.Architecture.ARM_64
RUNTIME = lambda_.Runtime.PYTHON_3_12
PIP_PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"
# Bump when the layout of the bundle changes, so caches and asset hashes follow.
BUNDLE_FORMAT = "1"

# Never shipped: bytecode caches and editor/OS litter. Tests and tools live outside pipeline/ already.
CODE_EXCLUDES = ("__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*.swp")
# Only used if CDK ever falls back to Docker (it does not while local bundling succeeds).
_FALLBACK_IMAGE = DockerImage.from_registry("public.ecr.aws/sam/build-python3.12")


def layer_hash() -> str:
    digest = hashlib.sha256()
    for part in (
        REQUIREMENTS.read_bytes(),
        PIP_PLATFORM.encode(),
        PYTHON_VERSION.encode(),
        BUNDLE_FORMAT.encode(),
    ):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _link_or_copy(src: str, dst: str) -> None:
    """Hard links are instant and the cache is never modified in place; copy across file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_layer_cache(cache_root: Path = CACHE_DIR) -> Path:
    """Installs requirements.txt for Lambda into the cache (once) and returns the directory holding `python/`."""
    target = cache_root / layer_hash()
    if (target / ".complete").exists():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root))
    try:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # .pyc files would make the asset differ on every build
            "--platform",
            PIP_PLATFORM,
            "--only-binary=:all:",
            "--python-version",
            PYTHON_VERSION,
            "--implementation",
            "cp",
            "--requirement",
            str(REQUIREMENTS),
            "--target",
            str(work / "python"),
        ]
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        shutil.rmtree(work / "python" / "bin", ignore_errors=True)  # console scripts are useless in a layer
        (work / ".complete").write_text(" ".join(command[3:]) + "\n")
        try:
            work.rename(target)
        except OSError:  # another synth finished first: keep its copy
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


@jsii.implements(ILocalBundling)
class _LayerBundler:
    """Fills the layer asset from the pip cache."""

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        cached = build_layer_cache()
        shutil.copytree(
            cached / "python", Path(output_dir) / "python", copy_function=_link_or_copy, dirs_exist_ok=True
        )
        return True


@jsii.implements(ILocalBundling)
class _CodeBundler:
    """Places the package at `<asset>/pipeline/` so handler strings read `pipeline.handlers.<name>.handler`."""

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        shutil.copytree(
            PIPELINE_DIR,
            Path(output_dir) / "pipeline",
            ignore=shutil.ignore_patterns(*CODE_EXCLUDES),
            dirs_exist_ok=True,
        )
        _write_version(Path(output_dir))
        return True


def _write_version(asset: Path) -> None:
    """`pipeline.version` reads the version from a `pyproject.toml` beside the package (a Lambda package has no
    distribution metadata); the asset gets one holding just the project's name and version, so the functions'
    logs and `--version` say which release runs instead of `0+unknown`."""
    text = f'[project]\nname = "{version.DISTRIBUTION}"\nversion = "{version.version()}"\n'
    (asset / "pyproject.toml").write_text(text, encoding="utf-8")


def dependencies_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(REQUIREMENTS.parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=layer_hash(),
        exclude=["*", "!requirements.txt"],
        bundling=BundlingOptions(image=_FALLBACK_IMAGE, local=_LayerBundler()),
    )


def pipeline_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(PIPELINE_DIR),
        asset_hash_type=AssetHashType.SOURCE,
        exclude=list(CODE_EXCLUDES),
        bundling=BundlingOptions(image=_FALLBACK_IMAGE, local=_CodeBundler()),
    )
