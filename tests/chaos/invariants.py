"""The invariants every chaos scenario must leave true, checked against S3, DynamoDB and SQS themselves.

1. Every listed video is COMPLETED with S3 objects whose bytes hash (SHA-256) to the source's, or FAILED with a
   reason and a message in the DLQ. (A video deleted at the source may be COMPLETED with `source_deleted`.)
2. No multipart upload the pipeline knows of is left open: one started by a live invocation (which must
   complete, abort or checkpoint it) or one saved in a checkpoint. An upload started by a *killed* invocation and
   never checkpointed is invisible to the pipeline: it is counted as orphaned (the bucket's
   AbortIncompleteMultipartUpload lifecycle rule removes it), not as a violation.
3. No key is uploaded twice: at most one successful completing call (CompleteMultipartUpload / PutObject) per
   key, and at most one object version per key (the bucket is versioned, so S3 itself keeps count).
4. No record is IN_PROGRESS once the queue has drained: nobody is working on it and no message will bring a
   worker back before its lease expires (one past its lease is reported as such).
Plus: no failure reason stored in DynamoDB carries one of the scenario's secrets.

The checker reports counts per category (the reliability table's columns) and the violations in words; it never
raises, so the broken-pipeline tests can assert that a violation *is* found.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from pipeline.clock import utc_now
from pipeline.keys import object_key
from pipeline.state import NOTE_SOURCE_DELETED, MediaRecord, MediaStatus

if TYPE_CHECKING:
    from devtools.gopro_simulator import GoProSimulator
    from devtools.local_runtime import LocalPipeline
    from tests.chaos.ledger import UploadLedger

PROVIDER = "gopro"
_DLQ_READ_ROUNDS = 50


@dataclass
class Outcome:
    """What a scenario left behind: the reliability table's columns, and every violation found."""

    videos: int = 0
    completed: int = 0
    source_deleted: int = 0
    failed: int = 0
    lost: int = 0
    corrupted: int = 0
    duplicated: int = 0
    stuck: int = 0
    open_uploads: int = 0
    orphaned_uploads: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def violation(self, text: str) -> None:
        self.violations.append(text)


def expected_keys(sim: GoProSimulator, media_id: str) -> list[tuple[int, str]]:
    """(item, S3 key) of every original file of a video, computed independently of the pipeline's records."""
    medium = sim.media(media_id)
    keys = []
    for item in range(1, medium.items + 1):
        if medium.items == 1:
            name = medium.filename
        else:
            path = PurePosixPath(medium.filename)
            name = f"{path.stem}_{item:02d}{path.suffix}"
        keys.append((item, object_key(PROVIDER, media_id, medium.captured_at, name)))
    return keys


class InvariantChecker:
    """Checks one scenario's pipeline (after its last night) against the invariants in the module docstring."""

    def __init__(
        self,
        pipeline: LocalPipeline,
        ledger: UploadLedger,
        *,
        videos: Iterable[str],
        secrets: Iterable[str] = (),
    ) -> None:
        assert pipeline.settings is not None
        self._pipeline = pipeline
        self._settings = pipeline.settings
        self._ledger = ledger
        self._videos = list(videos)
        self._secrets = [s for s in secrets if s]
        # The archive read back without botocore's response-checksum check: moto stores an approximate
        # full-object CRC32C for multipart uploads; SHA-256 of the bytes is the verdict here.
        self._reader = boto3.client(
            "s3",
            endpoint_url=self._settings.aws_endpoint_url,
            region_name=self._settings.aws_region,
            config=Config(response_checksum_validation="when_required"),
        )
        self._sqs = boto3.client(
            "sqs", endpoint_url=self._settings.aws_endpoint_url, region_name=self._settings.aws_region
        )

    def check(self) -> Outcome:
        outcome = Outcome(videos=len(self._videos))
        sim: GoProSimulator = self._pipeline.simulator
        present = {m.id for m in sim.library}
        dead_letters = self._dead_letters()
        versions = self._versions()
        state = self._pipeline.app.state  # type: ignore[union-attr]
        for media_id in self._videos:
            record = state.media.get(PROVIDER, media_id)
            self._check_video(outcome, sim, media_id, record, media_id not in present, dead_letters, versions)
        self._check_duplicates(outcome, versions)
        self._check_uploads(outcome)
        self._check_in_progress(outcome)
        self._check_queue(outcome)
        return outcome

    # --- invariant 1: every video archived byte for byte, or failed with a reason and a DLQ message ----------

    def _check_video(
        self,
        outcome: Outcome,
        sim: GoProSimulator,
        media_id: str,
        record: MediaRecord | None,
        deleted: bool,
        dead_letters: Counter[str],
        versions: dict[str, int],
    ) -> None:
        status = record.status if record else None
        if status is MediaStatus.COMPLETED:
            assert record is not None
            if record.note == NOTE_SOURCE_DELETED:
                if deleted:
                    outcome.source_deleted += 1
                    return
                outcome.lost += 1
                outcome.violation(f"{media_id}: recorded deleted at the source, but the source still has it")
                return
            self._check_archived(outcome, sim, media_id, record, versions)
            return
        if status is MediaStatus.FAILED:
            assert record is not None
            reason = (record.last_error or "").strip()
            if not reason:
                outcome.lost += 1
                outcome.violation(f"{media_id}: FAILED without a reason")
            elif not dead_letters.get(media_id):
                outcome.lost += 1
                outcome.violation(f"{media_id}: FAILED ({reason[:80]}) but no message for it in the DLQ")
            else:
                outcome.failed += 1
            for secret in self._secrets:
                if secret in reason:
                    outcome.violation(f"{media_id}: its failure reason carries a secret")
            return
        outcome.lost += 1
        where = "in the DLQ" if dead_letters.get(media_id) else "nowhere in the DLQ"
        outcome.violation(f"{media_id}: neither archived nor failed (status {status}, {where})")

    def _check_archived(
        self, outcome: Outcome, sim: GoProSimulator, media_id: str, record: MediaRecord, versions: dict[str, int]
    ) -> None:
        keys = expected_keys(sim, media_id)
        total = 0
        bad = []
        for item, key in keys:
            if versions.get(key, 0) == 0:
                bad.append(f"{key} is missing")
                continue
            body = self._reader.get_object(Bucket=self._settings.bucket_name, Key=key)["Body"].read()
            total += len(body)
            if hashlib.sha256(body).hexdigest() != sim.source_sha256(media_id, item=item):
                bad.append(f"{key} holds {len(body)} bytes that differ from the source")
        expected_key = keys[0][1] if len(keys) == 1 else keys[0][1].rsplit("/", 1)[0] + "/"
        if not bad and record.s3_key != expected_key:
            bad.append(f"the record points at {record.s3_key!r}, not {expected_key!r}")
        if not bad and record.size != total:
            bad.append(f"the record says {record.size} bytes, S3 holds {total}")
        if bad:
            outcome.corrupted += 1
            outcome.violation(f"{media_id}: COMPLETED but " + "; ".join(bad))
        else:
            outcome.completed += 1

    def _dead_letters(self) -> Counter[str]:
        """media id -> DLQ messages about it (read, then made visible again for the next reader)."""
        found: Counter[str] = Counter()
        handles = []
        for _ in range(_DLQ_READ_ROUNDS):
            batch = self._sqs.receive_message(
                QueueUrl=self._settings.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                handles.append(message["ReceiptHandle"])
                try:
                    media_id = json.loads(message["Body"]).get("media_id")
                except Exception:  # a poison body: not JSON, too deep, not an object
                    media_id = None
                found[media_id if isinstance(media_id, str) else "(poison)"] += 1
        for handle in handles:
            self._sqs.change_message_visibility(
                QueueUrl=self._settings.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0
            )
        return found

    # --- invariant 3: no key uploaded twice ------------------------------------------------------------------

    def _versions(self) -> dict[str, int]:
        versions: Counter[str] = Counter()
        paginator = self._reader.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self._settings.bucket_name):
            for version in page.get("Versions", []):
                versions[version["Key"]] += 1
        return dict(versions)

    def _check_duplicates(self, outcome: Outcome, versions: dict[str, int]) -> None:
        twice = {key: n for key, n in versions.items() if n > 1}
        for key, n in self._ledger.duplicated_keys().items():
            twice[key] = max(twice.get(key, 0), n)
        outcome.duplicated = len(twice)
        for key, n in sorted(twice.items()):
            outcome.violation(f"{key} was uploaded {n} times")

    # --- invariant 2: no known multipart upload left open ----------------------------------------------------

    def _check_uploads(self, outcome: Outcome) -> None:
        answer = self._reader.list_multipart_uploads(Bucket=self._settings.bucket_name)
        for upload in answer.get("Uploads", []):
            upload_id = upload["UploadId"]
            known = self._ledger.uploads.get(upload_id)
            if upload_id in self._ledger.checkpointed:
                outcome.open_uploads += 1
                outcome.violation(f"{upload['Key']}: checkpointed upload {upload_id[:12]}… left open")
            elif known is not None and known.started_by_killed_invocation:
                outcome.orphaned_uploads += 1
            else:
                outcome.open_uploads += 1
                outcome.violation(f"{upload['Key']}: upload {upload_id[:12]}… left open by a live invocation")

    # --- invariant 4: nothing IN_PROGRESS once drained --------------------------------------------------------

    def _check_in_progress(self, outcome: Outcome) -> None:
        state = self._pipeline.app.state  # type: ignore[union-attr]
        now = utc_now()
        for record in state.media.list_by_status(MediaStatus.IN_PROGRESS, 1000):
            outcome.stuck += 1
            past = record.lease_expires_at is not None and record.lease_expires_at <= now
            outcome.violation(
                f"{record.media_id}: IN_PROGRESS with nobody working on it"
                + (" and past its lease" if past else f" (lease until {record.lease_expires_at})")
            )

    def _check_queue(self, outcome: Outcome) -> None:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=self._settings.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        left = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        if left:
            outcome.violation(f"{left} message(s) still in the download queue: the consumers stalled")


def summarise(outcome: Outcome) -> dict[str, Any]:
    """The reliability table's numbers for one scenario run."""
    return {
        "videos": outcome.videos,
        "completed": outcome.completed,
        "source_deleted": outcome.source_deleted,
        "failed": outcome.failed,
        "lost": outcome.lost,
        "corrupted": outcome.corrupted,
        "duplicated": outcome.duplicated,
        "stuck": outcome.stuck,
        "orphaned_uploads": outcome.orphaned_uploads,
    }
