"""Fixtures of the packaging tests: the synthesized dev assembly, the emulation kit, and a packaged pipeline.

Why the dev environment: it is the one a developer deploys first, and its template declares the same code asset,
layer and runtime as staging and prod (tests/infra checks that). `cdk.out/dev` is reused when `make synth` (which
`make test` runs first) wrote it after the last change to the code; otherwise the test session synthesizes its own
copy, so a stale assembly is never tested.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import lambda_rie
from devtools.gopro_simulator import KB, MB, SimMedia, SimulatorConfig
from tests.fixtures.aws import MotoStack
from tests.fixtures.simulator import SimulatorFactory
from tests.packaging.assembly import Assembly, LocalStackResources
from tests.packaging.harness import PackagedPipeline, secret_document

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT = "dev"
STACK = f"GoProSync-{ENVIRONMENT}"
# Three videos: two single PUTs and one above the 16 MiB multipart threshold (the awscrt checksums in the layer).
LIBRARY = SimulatorConfig(
    media=tuple(
        SimMedia(id=f"rie{index:021x}", size=size, filename=f"GX01{index:04d}.MP4")
        for index, size in enumerate((300 * KB, 1 * MB, 17 * MB))
    ),
    seed=3,
)


def _fresh(directory: Path) -> bool:
    template = directory / f"{STACK}.template.json"
    if not template.exists():
        return False
    sources = [*REPO_ROOT.joinpath("pipeline").rglob("*.py"), *REPO_ROOT.joinpath("infra_cdk").rglob("*.py")]
    sources.append(REPO_ROOT / "requirements.txt")
    return all(source.stat().st_mtime <= template.stat().st_mtime for source in sources)


@pytest.fixture(scope="session")
def dev_assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    directory = REPO_ROOT / "cdk.out" / ENVIRONMENT
    if not _fresh(directory):
        from infra_cdk.synth import synth

        directory = synth(ENVIRONMENT, tmp_path_factory.mktemp("cdk.out")).parent
    return Assembly.load(directory, STACK)


@pytest.fixture(scope="session")
def rie_kit(dev_assembly: Assembly) -> lambda_rie.RuntimeKit:
    runtimes = {r["Properties"]["Runtime"] for r in dev_assembly.of_type("AWS::Lambda::Function").values()}
    assert len(runtimes) == 1, f"one runtime for every function, found {runtimes}"
    (runtime,) = runtimes
    return lambda_rie.setup(runtime.removeprefix("python"))


@pytest.fixture
def packaged(
    aws: MotoStack,
    gopro_sim: SimulatorFactory,
    dev_assembly: Assembly,
    rie_kit: lambda_rie.RuntimeKit,
    tmp_path: Path,
) -> PackagedPipeline:
    sim = gopro_sim(LIBRARY)
    creds = sim.credentials
    local = LocalStackResources(
        dev_assembly,
        aws.client,
        region=aws.region,
        secret_value=secret_document(
            creds.client_id, creds.client_secret, creds.refresh_token, creds.access_token
        ),
    )
    local.provision_all("AWS::SecretsManager::Secret")
    pipeline = PackagedPipeline(
        assembly=dev_assembly,
        kit=rie_kit,
        local=local,
        aws_endpoint_url=aws.endpoint_url,
        api_url=sim.base_url,
        log_dir=tmp_path,
        environment=ENVIRONMENT,
        simulator=sim,
    )
    return pipeline
