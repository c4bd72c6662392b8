"""A transfer killed between two progress checkpoints, resumed against LocalStack's S3, which (as S3 does and
moto does not) lists each part with the CRC32C it checked on upload: the successor adopts the parts uploaded
after the last checkpoint from ListParts alone, reads only the parts S3 does not hold, and S3 accepts the
whole-object CRC32C folded from the adopted checksums at completion.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from awscrt.checksums import crc32c as reference_crc32c

from pipeline.retry import RetryPolicy
from pipeline.transfer import Checksum, MultipartCheckpoint, S3StreamTransfer, TransferConfig, TransferRequest
from tests.emulators.conftest import LocalStackAws
from tests.integration.transfer.conftest import MIB, ContentServer

pytestmark = [pytest.mark.integration, pytest.mark.localstack]
KEY = "gopro/2024/05/01/abc/GX010042.MP4"


class Killed(BaseException):
    """The process died: not an Exception, so the engine neither aborts nor checkpoints."""


def _engine(s3: Any) -> S3StreamTransfer:
    config = TransferConfig(
        part_size=5 * MIB,
        multipart_threshold=8 * MIB,
        window=1,
        read_timeout=10.0,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
        checkpoint_every_parts=4,
    )
    return S3StreamTransfer(s3, config=config, sleep=lambda _s: None)


def _request(server: ContentServer, bucket: str) -> TransferRequest:
    return TransferRequest(
        url=server.url(), head_url=server.url(), bucket=bucket, key=KEY, expected_size=len(server.content)
    )


def test_a_successor_adopts_what_s3_lists_and_reads_only_the_rest(
    localstack_aws: LocalStackAws, content_server: ContentServer
) -> None:
    s3 = localstack_aws.s3()
    bucket = localstack_aws.bucket(s3)
    content = content_server.serve(40 * MIB, seed=5)  # 8 parts
    dead = [False]
    parts: list[int] = []

    def kill_at_part_7(model: Any, params: Any, **_: Any) -> None:
        if model.name == "UploadPart":
            number = int(params["query_string"]["partNumber"])
            dead[0] = dead[0] or number == 7
            if not dead[0]:
                parts.append(number)
        if dead[0]:
            raise Killed("kill -9")

    s3.meta.events.register("before-call.s3", kill_at_part_7, unique_id="kill")
    saved: list[MultipartCheckpoint] = []
    with pytest.raises(Killed):
        _engine(s3).transfer(_request(content_server, bucket), on_checkpoint=saved.append)
    s3.meta.events.unregister("before-call.s3", unique_id="kill")
    assert [len(cp.parts) for cp in saved] == [0, 4]  # parts 5 and 6 reached S3 after the last checkpoint
    listed = s3.list_parts(Bucket=bucket, Key=KEY, UploadId=saved[-1].upload_id)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3, 4, 5, 6]
    uploaded_again: list[int] = []
    s3.meta.events.register(
        "before-call.s3.UploadPart",
        lambda params, **_: uploaded_again.append(int(params["query_string"]["partNumber"])),
    )

    result = _engine(s3).transfer(_request(content_server, bucket), resume=saved[-1])

    assert sorted(uploaded_again) == [7, 8]
    assert result.reused_parts == 6
    assert result.checksum == Checksum.crc32c(reference_crc32c(content))
    body = s3.get_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
