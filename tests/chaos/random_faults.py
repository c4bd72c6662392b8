"""The fault catalogue of the long randomised set: each entry arms one kind of fault with random parameters.

A randomised night draws a small library and a few faults from here (seeded by --chaos-seed), plays one night,
and checks the invariants. Families are the report's rows. Every fault is bounded (a count, never "forever"), so a
video can run out of its three receives and end FAILED in the DLQ, which the invariants allow, but the pipeline
must never lose, corrupt, duplicate or strand one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ReadTimeoutError

from devtools.gopro_simulator import MIB, SimulatorConfig
from tests.chaos import kill
from tests.chaos.harness import ChaosRun
from tests.chaos.library import library, media_id, video

Arm = Callable[[ChaosRun, random.Random, list[str]], Callable[[Any], None] | None]


@dataclass(frozen=True)
class FaultKind:
    family: str
    arm: Arm  # arms the fault; may return a hook to run right after the listing
    single_consumer: bool = False  # kills need one invocation at a time


def random_library(rng: random.Random, tag: str) -> SimulatorConfig:
    sizes = [600 * 1024, 6 * MIB, 11 * MIB]
    media = [video(index, rng.choice(sizes), tag=tag) for index in range(1, rng.randint(2, 4) + 1)]
    if rng.random() < 0.3:
        media.append(video(len(media) + 1, 6 * MIB, items=2, tag=tag))  # a chaptered recording
    return library(*media, seed=rng.randint(1, 10_000))


def _victim(rng: random.Random, ids: list[str]) -> str:
    return rng.choice(ids)


def _cut(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    def hook(_: Any) -> None:
        for _ in range(rng.randint(1, 4)):
            run.sim.faults.cut_connection(
                after_bytes=rng.randrange(1, 600 * 1024), media_id=_victim(rng, ids), reset=rng.random() < 0.5
            )

    return hook


def _rate_limit(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    endpoint = rng.choice(["download", "content"])
    return lambda _: run.sim.faults.rate_limit(count=rng.randint(1, 3), retry_after=1, endpoint=endpoint)


def _server_errors(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    endpoint, status = rng.choice(["download", "content"]), rng.choice([500, 502, 503, 504])
    return lambda _: run.sim.faults.server_errors(count=rng.randint(1, 4), status=status, endpoint=endpoint)


def _slow_first_byte(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    return lambda _: run.sim.faults.slow_first_byte(
        rng.uniform(0.5, 3.0), count=rng.randint(1, 2), endpoint="content", media_id=_victim(rng, ids)
    )


def _token_expiry(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    return lambda _: run.sim.faults.expire_access_tokens()


def _url_expiry(run: ChaosRun, rng: random.Random, ids: list[str]) -> None:
    fired: list[bool] = []
    target = rng.randint(1, 3)
    seen: list[int] = []

    def expire(**_: Any) -> None:
        seen.append(1)
        if len(seen) == target and not fired:
            fired.append(True)
            run.sim.advance_clock(7200)

    run.client("s3").meta.events.register("before-call.s3.UploadPart", expire)


def _delete(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    victim = _victim(rng, ids)
    return lambda _: run.sim.delete_media(victim)


def _ignore_range(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    return lambda _: run.sim.faults.ignore_range(count=rng.randint(1, 3))


def _s3_parts(run: ChaosRun, rng: random.Random, ids: list[str]) -> None:
    if rng.random() < 0.5:
        run.aws.fail("s3", "UploadPart", "SlowDown", status=503, layer="send", attempts=1, count=rng.randint(1, 3))
    else:
        run.aws.fail("s3", "UploadPart", rng.choice(["InternalError", "SlowDown"]), status=500, count=1)


def _s3_complete(run: ChaosRun, rng: random.Random, ids: list[str]) -> None:
    choice = rng.random()
    if choice < 0.4:
        run.aws.fail("s3", "CompleteMultipartUpload", "SlowDown", status=503, count=1)
    elif choice < 0.7:
        run.aws.fail("s3", "CompleteMultipartUpload", "InternalError", status=500, layer="send", count=1)
    else:
        lost: list[bool] = []

        def lose(parsed: dict[str, Any], params: dict[str, Any]) -> None:
            if not lost:
                lost.append(True)
                raise ReadTimeoutError(endpoint_url="http://moto/complete")

        run.aws.after("s3", "CompleteMultipartUpload", lose)


def _dynamodb(run: ChaosRun, rng: random.Random, ids: list[str]) -> None:
    code = "ProvisionedThroughputExceededException"
    run.aws.fail("dynamodb", "UpdateItem", code, status=400, layer="send", count=rng.randint(1, 3))
    status = rng.choice(["IN_PROGRESS", "COMPLETED", "PENDING"])

    def writes(params: dict[str, Any]) -> bool:
        return f'"{status}"' in json.dumps(params.get("ExpressionAttributeValues", {}))

    run.aws.fail("dynamodb", "UpdateItem", code, status=400, count=1, match=writes)


def _send_batch(run: ChaosRun, rng: random.Random, ids: list[str]) -> None:
    once: list[bool] = []

    def misreport(parsed: dict[str, Any], params: dict[str, Any]) -> None:
        if once or not parsed.get("Successful"):
            return
        once.append(True)
        moved = parsed["Successful"][:1]
        parsed["Successful"] = parsed["Successful"][1:]
        parsed["Failed"] = [{"Id": m["Id"], "SenderFault": False, "Code": "InternalError"} for m in moved]

    run.aws.after("sqs", "SendMessageBatch", misreport)


def _secrets(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    def hook(_: Any) -> None:
        run.sim.faults.expire_access_tokens()
        run.aws.fail(
            "secretsmanager", "GetSecretValue", "InternalServiceError", status=500, count=rng.randint(1, 2)
        )

    return hook


def _duplicates(run: ChaosRun, rng: random.Random, ids: list[str]) -> Callable[[Any], None]:
    def hook(_: Any) -> None:
        sqs = run.client("sqs")
        batch = sqs.receive_message(QueueUrl=run.settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in batch:
            for _ in range(rng.randint(0, 2)):
                sqs.send_message(QueueUrl=run.settings.queue_url, MessageBody=message["Body"])
            sqs.change_message_visibility(
                QueueUrl=run.settings.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    return hook


def _kill(run: ChaosRun, rng: random.Random, ids: list[str]) -> None:
    steps = [p for p in kill.KILL_POINTS if p not in (kill.AFTER_CHECKPOINT, kill.AFTER_CONTINUATION)]
    for _ in range(rng.randint(1, 2)):
        run.kills.arm(rng.choice(steps), media_id=_victim(rng, ids))


CATALOGUE: tuple[FaultKind, ...] = (
    FaultKind("connection cuts", _cut),
    FaultKind("429 storms", _rate_limit),
    FaultKind("5xx bursts", _server_errors),
    FaultKind("slow first byte", _slow_first_byte),
    FaultKind("token expiry", _token_expiry),
    FaultKind("URL expiry mid-transfer", _url_expiry),
    FaultKind("deleted after listing", _delete),
    FaultKind("Range ignored", _ignore_range),
    FaultKind("S3 UploadPart errors", _s3_parts),
    FaultKind("S3 CompleteMultipartUpload errors", _s3_complete),
    FaultKind("DynamoDB throughput", _dynamodb),
    FaultKind("SendMessageBatch failed entries", _send_batch),
    FaultKind("Secrets Manager unavailable", _secrets),
    FaultKind("duplicate delivery", _duplicates),
    FaultKind("downloader killed", _kill, single_consumer=True),
)


def draw(rng: random.Random) -> list[FaultKind]:
    return rng.sample(CATALOGUE, rng.randint(2, 4))


def ids_of(config: SimulatorConfig) -> list[str]:
    return [m.id for m in config.media or ()]


__all__ = ["CATALOGUE", "FaultKind", "draw", "ids_of", "media_id", "random_library"]
