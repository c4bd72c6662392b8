"""The function package as the CDK bundles it: the `pipeline/` package, and the version it reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra_cdk.bundling import _CodeBundler
from pipeline import version

# No site-packages (-S): the distribution's metadata, when installed, must not answer for the package.
SCRIPT = "import sys; sys.path.insert(0, '.'); from pipeline.version import version; print(version())"


def test_the_packaged_pipeline_reports_the_projects_version(tmp_path: Path) -> None:
    """A Lambda package has no distribution metadata: without the bundled pyproject.toml it says 0+unknown."""
    assert _CodeBundler().try_bundle(str(tmp_path))
    assert (tmp_path / "pipeline" / "handlers").is_dir()

    answer = subprocess.run(
        [sys.executable, "-S", "-c", SCRIPT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )

    assert answer.stdout.strip() == version.version() != version.UNKNOWN
