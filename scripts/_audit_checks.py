"""The archive audit's comparison, apart from AWS: what agrees, what does not, and what `--repair` does about it.

Why a module of its own: `scripts/audit_archive.py` reads the three sources (the provider's listing, the table,
the bucket) and repairs; everything here is a pure function of what was read, so each rule is tested on its own
and the script stays a reader and a printer. Every finding names its medium and its key where it has them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pipeline.clock import iso_utc
from pipeline.providers.base import CloudProvider, MediaItem
from pipeline.services.listing import skip_reason as listing_skip_reason
from pipeline.state import NOTE_SOURCE_DELETED, MediaRecord, MediaStatus


class Kind(enum.StrEnum):
    """What a finding is; each says what `--repair` does about it (`REPAIRS`)."""

    MISSING_OBJECT = "missing_object"  # a COMPLETED record's object (or one of its files) is not in the bucket
    SIZE_MISMATCH = "size_mismatch"  # the object(s) hold another number of bytes than recorded
    CHECKSUM_MISMATCH = "checksum_mismatch"  # S3's (or, --deep, the bytes') CRC32C is not the recorded one
    OVERWRITTEN = "overwritten"  # the object at the key is not this medium's (its metadata names another or none)
    UNVERIFIED = "unverified"  # no full-object CRC32C to compare (run with --deep), or S3 refused to say
    NOT_ARCHIVED = "not_archived"  # the provider lists an archivable medium the table has no record of
    DELETED_BUT_LISTED = "deleted_but_listed"  # recorded deleted at the source, yet the provider lists it
    STALLED = "stalled"  # IN_PROGRESS with its lease run out: its worker is gone
    FAILED_WITHOUT_REASON = "failed_without_reason"  # FAILED with no error recorded: nothing tells you why
    UNCLAIMED_OBJECT = "unclaimed_object"  # an object under the provider's prefix that no record claims
    OPEN_UPLOAD = "open_upload"  # a multipart upload no record's checkpoint or live lease explains


class Repair(enum.StrEnum):
    ENQUEUE = "enqueue"
    REOPEN = "reopen+enqueue"


REPAIRS: dict[Kind, Repair | None] = {
    Kind.MISSING_OBJECT: Repair.REOPEN,
    Kind.SIZE_MISMATCH: Repair.REOPEN,
    Kind.CHECKSUM_MISMATCH: Repair.REOPEN,
    Kind.OVERWRITTEN: Repair.REOPEN,
    Kind.UNVERIFIED: None,
    Kind.NOT_ARCHIVED: Repair.ENQUEUE,
    Kind.DELETED_BUT_LISTED: Repair.REOPEN,
    Kind.STALLED: Repair.ENQUEUE,
    Kind.FAILED_WITHOUT_REASON: Repair.ENQUEUE,
    Kind.UNCLAIMED_OBJECT: None,
    Kind.OPEN_UPLOAD: None,
}


@dataclass(frozen=True)
class Finding:
    kind: Kind
    media_id: str | None
    key: str | None
    detail: str

    @property
    def repair(self) -> Repair | None:
        return REPAIRS[self.kind]

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value, "repair": self.repair.value if self.repair else None}


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class BucketListing:
    """The objects under the provider's prefix, indexed by folder: a chaptered medium's record names its folder,
    and a lookup per record must not scan the whole bucket."""

    def __init__(self, objects: dict[str, StoredObject]) -> None:
        self.objects = objects
        self._folders: dict[str, list[str]] = {}
        for key in sorted(objects):
            self._folders.setdefault(key.rsplit("/", 1)[0] + "/", []).append(key)

    def keys_for(self, record: MediaRecord) -> list[str]:
        """The keys a COMPLETED record names that exist: its object, or every object of its folder."""
        if not record.s3_key:
            return []
        if record.s3_key.endswith("/"):
            return list(self._folders.get(record.s3_key, []))
        return [record.s3_key] if record.s3_key in self.objects else []


@dataclass(frozen=True)
class OpenUpload:
    key: str
    upload_id: str
    initiated: str


@dataclass(frozen=True)
class ObjectFacts:
    """What S3 says about one object: its medium, its place in the plan and the CRC32C to compare (None: none)."""

    key: str
    size: int
    media_id: str | None
    item: int
    checksum: str | None
    checksum_source: str  # "s3", "metadata", "read" (--deep) or why there is none
    foreign: str | None = None  # a checksum S3 keeps that the pipeline never writes (ChecksumCRC32, ...)
    error: str | None = None  # S3 answered this object with an error: it could not be checked


@dataclass
class Audit:
    """Everything the comparison found; `accounted` counts what agrees, `findings` what does not."""

    findings: list[Finding] = field(default_factory=list)
    accounted: dict[str, int] = field(default_factory=dict)
    checked_objects: int = 0
    verified_by: dict[str, int] = field(default_factory=dict)  # objects whose CRC32C agreed, by where it came from

    def count(self, name: str, step: int = 1) -> None:
        self.accounted[name] = self.accounted.get(name, 0) + step

    def add(self, kind: Kind, media_id: str | None, key: str | None, detail: str) -> None:
        self.findings.append(Finding(kind, media_id, key, detail))

    @property
    def clean(self) -> bool:
        return not self.findings


# --- the lister's rule ---------------------------------------------------------------------------------------


def skip_reason(provider: CloudProvider, item: MediaItem, *, include_photos: bool) -> str | None:
    """Why the lister would not enqueue `item` (None: it would): the listing's own rule, called, not copied."""
    reason = listing_skip_reason(provider, item, include_photos=include_photos)
    return None if reason is None else reason.value


# --- keys ----------------------------------------------------------------------------------------------------


def media_id_of(key: str) -> str | None:
    """The media id segment of `{provider}/{yyyy}/{mm}/{dd}/{media_id}/{name}` (or `{provider}/undated/...`)."""
    parts = key.split("/")
    return parts[-2] if len(parts) >= 4 and parts[-2] else None


# --- the comparison ------------------------------------------------------------------------------------------


def check_completed(
    audit: Audit, record: MediaRecord, bucket: BucketListing, facts_of: Callable[[str], ObjectFacts | None]
) -> set[str]:
    """Findings about one COMPLETED record's objects (`facts_of(key)`: what S3 says, None if gone); answers the
    keys it claims."""
    media_id = record.media_id
    if record.note == NOTE_SOURCE_DELETED:
        audit.count("deleted_at_source")
        return set()
    if not record.s3_key or record.checksum is None:
        audit.add(Kind.MISSING_OBJECT, media_id, record.s3_key, "the COMPLETED record names no object or checksum")
        return set()
    expected = record.checksum.value.split(",")
    keys = bucket.keys_for(record)
    claimed = set(keys)
    if len(keys) < len(expected):
        audit.add(
            Kind.MISSING_OBJECT, media_id, record.s3_key, f"{len(keys)} of {len(expected)} file(s) in the bucket"
        )
        return claimed
    size = sum(bucket.objects[key].size for key in keys)
    if record.size is not None and size != record.size:
        audit.add(
            Kind.SIZE_MISMATCH, media_id, record.s3_key, f"{size} bytes in the bucket, {record.size} recorded"
        )
        return claimed
    facts: list[ObjectFacts] = []
    for key in keys:
        fact = facts_of(key)
        audit.checked_objects += 1
        if fact is None:
            audit.add(Kind.MISSING_OBJECT, media_id, key, "gone while the audit read it")
            return claimed
        if fact.error:
            audit.add(Kind.UNVERIFIED, media_id, key, fact.error)
            return claimed
        if fact.media_id != media_id:
            owner = f"medium {fact.media_id}" if fact.media_id else "no medium"
            audit.add(Kind.OVERWRITTEN, media_id, key, f"its metadata names {owner}")
            return claimed
        facts.append(fact)
    facts.sort(key=lambda f: (f.item, f.key))
    if len(facts) != len(expected):
        audit.add(Kind.SIZE_MISMATCH, media_id, record.s3_key, f"{len(facts)} files, {len(expected)} recorded")
        return claimed
    for fact, value in zip(facts, expected, strict=True):
        if fact.foreign and fact.checksum_source != "read":
            algorithm = fact.foreign.removeprefix("Checksum")
            audit.add(
                Kind.CHECKSUM_MISMATCH,
                media_id,
                fact.key,
                f"S3 keeps a {algorithm} checksum, the pipeline writes CRC32C: something else rewrote it",
            )
            return claimed
        if fact.checksum is None:
            audit.add(Kind.UNVERIFIED, media_id, fact.key, f"{fact.checksum_source}: run with --deep to read it")
            return claimed
        if fact.checksum != value:
            audit.add(
                Kind.CHECKSUM_MISMATCH,
                media_id,
                fact.key,
                f"CRC32C {fact.checksum} ({fact.checksum_source}), {value} recorded",
            )
            return claimed
    audit.count("completed_verified")
    for fact in facts:
        audit.verified_by[fact.checksum_source] = audit.verified_by.get(fact.checksum_source, 0) + 1
    return claimed


def check_record(audit: Audit, record: MediaRecord, now: datetime) -> None:
    """Findings about a record that is not COMPLETED: accounted for, or stuck."""
    if record.status is MediaStatus.PENDING:
        audit.count("pending")
    elif record.status is MediaStatus.FAILED:
        if record.last_error:
            audit.count("failed_with_reason")
        else:
            audit.add(Kind.FAILED_WITHOUT_REASON, record.media_id, None, "FAILED with no error recorded")
    elif record.lease_live(now):
        audit.count("in_progress")
    else:
        expired = iso_utc(record.lease_expires_at) if record.lease_expires_at else "never set"
        audit.add(Kind.STALLED, record.media_id, None, f"IN_PROGRESS, lease expired ({expired})")


def check_listing(
    audit: Audit, listed: Iterable[MediaItem], records: dict[str, MediaRecord], reason_of: Any
) -> None:
    """Every archivable listed medium must have a record (its status is judged by `check_record`)."""
    seen: set[str] = set()
    for item in listed:
        seen.add(item.media_id)
        reason = reason_of(item)
        if reason:
            audit.count(f"not_archivable_{reason}")
            continue
        record = records.get(item.media_id)
        if record is None:
            audit.add(Kind.NOT_ARCHIVED, item.media_id, None, f"{item.filename or '?'}: no record in the table")
        elif record.status is MediaStatus.COMPLETED and record.note == NOTE_SOURCE_DELETED:
            audit.add(Kind.DELETED_BUT_LISTED, item.media_id, None, "recorded deleted at the source, still listed")
    gone = [r for r in records.values() if r.status is MediaStatus.COMPLETED and r.media_id not in seen]
    audit.count("archived_no_longer_listed", sum(1 for r in gone if r.note != NOTE_SOURCE_DELETED))


def check_bucket(
    audit: Audit,
    objects: dict[str, StoredObject],
    claimed: set[str],
    records: dict[str, MediaRecord],
    uploads: Sequence[OpenUpload],
    now: datetime,
) -> None:
    """Objects no record claims, and uploads no record explains."""
    for key in sorted(objects):
        if key in claimed:
            continue
        media_id = media_id_of(key)
        record = records.get(media_id or "")
        if record is not None and record.status is not MediaStatus.COMPLETED:
            audit.count("objects_of_unfinished_media")  # a chaptered medium part-way: the next delivery skips it
            continue
        why = "no record of its medium" if record is None else "its medium's record names other objects"
        audit.add(Kind.UNCLAIMED_OBJECT, media_id, key, why)
    checkpoints = {
        str((r.checkpoint or {}).get("multipart", {}).get("upload_id", ""))
        for r in records.values()
        if r.status is not MediaStatus.COMPLETED and r.checkpoint
    }
    for upload in uploads:
        record = records.get(media_id_of(upload.key) or "")
        if upload.upload_id in checkpoints or (record is not None and record.lease_live(now)):
            audit.count("uploads_in_progress")
            continue
        audit.add(
            Kind.OPEN_UPLOAD,
            media_id_of(upload.key),
            upload.key,
            f"upload {upload.upload_id[:16]}… initiated {upload.initiated}, no record resumes it",
        )
