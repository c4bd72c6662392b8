"""scripts/audit_archive.py on an archive whose S3 keeps real CRC32C checksums (LocalStack; DynamoDB on moto).

moto keeps no checksum of a single PutObject, so there the audit's HEAD falls back to the CRC32C the pipeline
wrote into the metadata, which an overwrite can copy. LocalStack keeps S3's own, as AWS does: here HEAD alone
catches bytes changed behind the pipeline's back, whatever metadata they carry. Then `--repair` and one drain
archive the damaged media again and the audit is clean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.endpoint_router import routing
from devtools.gopro_simulator import MB, MediaType, SimMedia, SimulatorConfig
from devtools.local_runtime import LocalPipeline
from pipeline.aws_clients import clear_client_cache
from pipeline.config import EnvVar, Settings
from pipeline.providers.gopro.config import GoProEnv
from pipeline.state import MediaStatus
from pipeline.transfer.checksums import crc32c, to_base64
from scripts import _audit_archive as audit_archive
from scripts.cli.app import run_as_script
from tests.emulators.conftest import LocalStackAws
from tests.emulators.test_night_end_to_end import FAST, remove_resources
from tests.fixtures.aws import MotoStack

pytestmark = [pytest.mark.integration, pytest.mark.localstack]
START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
SINGLE = "5f0c1a2b3c4d5e6f70819b01"  # one PutObject
LARGE = "5f0c1a2b3c4d5e6f70819b02"  # multipart, FULL_OBJECT CRC32C
CHAPTERED = "5f0c1a2b3c4d5e6f70819b03"  # two files


def library() -> SimulatorConfig:
    def video(media_id: str, index: int, size: int, items: int = 1) -> SimMedia:
        moment = START + timedelta(days=index)
        return SimMedia(
            id=media_id, type=MediaType.VIDEO, size=size, items=items, captured_at=moment, created_at=moment
        )

    return SimulatorConfig(
        media=[video(SINGLE, 0, 3 * MB), video(LARGE, 1, 7 * MB), video(CHAPTERED, 2, 4 * MB, items=2)], seed=3
    )


@pytest.fixture
def night(
    aws: MotoStack, localstack_aws: LocalStackAws, gopro_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalPipeline]:
    with routing(localstack_aws.endpoint_url, {"dynamodb": aws.endpoint_url}) as router:
        sim = gopro_sim(library())
        pipeline = LocalPipeline(
            base_settings=Settings.from_env({}),
            aws_endpoint_url=router.endpoint_url,
            simulator=sim,
            retry_delay=0,
            settings_overrides=FAST,
        )
        try:
            pipeline.start()
            assert pipeline.run().ok
            for name in (
                GoProEnv.REFRESH_TOKEN,
                GoProEnv.ACCESS_TOKEN,
                GoProEnv.CLIENT_ID,
                GoProEnv.CLIENT_SECRET,
            ):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv(GoProEnv.API_URL, sim.base_url)
            monkeypatch.setenv(GoProEnv.AUTH_URL, sim.base_url)
            monkeypatch.setenv(EnvVar.RETRY_MAX_ATTEMPTS, "1")
            yield pipeline
        finally:
            pipeline.stop()
            remove_resources(pipeline, localstack_aws)
            clear_client_cache()


def audit(pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    argv = ["--env", pipeline.settings.environment, "--endpoint-url", pipeline.settings.aws_endpoint_url, "--json"]
    code = run_as_script(audit_archive.NAME, [*argv, *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)


def key_of(pipeline: LocalPipeline, media_id: str) -> str:
    record = pipeline.app.state.media.get("gopro", media_id)
    assert record is not None
    return str(record.s3_key)


def test_head_checksums_catch_damage_and_repair_restores_it(
    night: LocalPipeline, localstack_aws: LocalStackAws, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = audit(night, capsys)
    assert code == 0, doc["findings"]
    assert doc["verified_by"] == {"s3": 4}  # S3's own CRC32C for the single PUT, the multipart and both chapters

    s3, bucket = localstack_aws.s3(), night.settings.bucket_name
    single = key_of(night, SINGLE)
    head = s3.head_object(Bucket=bucket, Key=single)
    forged = bytearray(s3.get_object(Bucket=bucket, Key=single)["Body"].read())
    forged[10] ^= 0xFF  # same size, same metadata (its recorded CRC32C included), one byte changed
    s3.put_object(
        Bucket=bucket,
        Key=single,
        Body=bytes(forged),
        Metadata=head["Metadata"],
        ChecksumCRC32C=to_base64(crc32c(bytes(forged))),
    )
    large = key_of(night, LARGE)
    s3.put_object(
        Bucket=bucket, Key=large, Body=b"truncated", Metadata=s3.head_object(Bucket=bucket, Key=large)["Metadata"]
    )
    folder = key_of(night, CHAPTERED)
    chapters = sorted(e["Key"] for e in s3.list_objects_v2(Bucket=bucket, Prefix=folder)["Contents"])
    s3.delete_object(Bucket=bucket, Key=chapters[0])

    code, doc = audit(night, capsys)
    assert code == audit_archive.EXIT_FINDINGS
    found = {(f["kind"], f["media_id"]) for f in doc["findings"]}
    assert found == {("checksum_mismatch", SINGLE), ("size_mismatch", LARGE), ("missing_object", CHAPTERED)}
    [mismatch] = [f for f in doc["findings"] if f["kind"] == "checksum_mismatch"]
    assert "(s3)" in mismatch["detail"]

    code, doc = audit(night, capsys, "--repair")
    assert sorted((r["media_id"], r["result"]) for r in doc["repairs"]) == [
        (SINGLE, "enqueued"),
        (LARGE, "enqueued"),
        (CHAPTERED, "enqueued"),
    ]
    night.drain()
    for media_id in (SINGLE, LARGE, CHAPTERED):
        record = night.app.state.media.get("gopro", media_id)
        assert record.status is MediaStatus.COMPLETED, record.last_error
    code, doc = audit(night, capsys)
    assert code == 0, doc["findings"]
    assert doc["verified_by"] == {"s3": 4}
