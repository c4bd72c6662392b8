"""What catalog, restore and the sidecar back-fill share: the archive as a list of media, and the selectors.

The selectors' options are in scripts/cli/options.py.

Why one module: `catalog.py` and `restore.py` must select media with the same words (`--media-id`, `--since`,
`--until`, `--camera`, `--type`, `--name`), and both read a medium the same way: its COMPLETED record in the state
table (the archive's truth), its sidecar for what the cloud knew, and its objects' storage class and restore state
from S3 itself (a lifecycle rule moves objects without telling the table).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from infra_cdk.settings import STACK_NAME_PREFIX
from pipeline.clock import parse_iso_utc
from pipeline.services.sidecar import SIDECAR_NAME, read_sidecar, sidecar_key
from pipeline.state import MediaRecord, MediaStatus, StateStore
from scripts._common import Context, MissingResource, aws_call

# Storage classes whose objects must be restored before a GET; every other class is readable at once.
COLD_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
MAX_MEDIA = 1_000_000  # one status-index query reads them all; a personal archive is far below this


@dataclass(frozen=True)
class ArchivedFile:
    """One object of a medium as S3 reports it now."""

    key: str
    size: int
    storage_class: str
    filename: str  # the original file name (sidecar), else the key's last part
    crc32c: str | None = None
    restore: str | None = None  # the raw `Restore` header: None (never restored / not cold), ongoing or expiry

    @property
    def cold(self) -> bool:
        return self.storage_class in COLD_CLASSES

    @property
    def restoring(self) -> bool:
        return bool(self.restore) and 'ongoing-request="true"' in str(self.restore)

    @property
    def restored_until(self) -> str | None:
        text = str(self.restore or "")
        if 'ongoing-request="false"' not in text or "expiry-date=" not in text:
            return None
        return text.split("expiry-date=", 1)[1].strip().strip('"')

    @property
    def readable(self) -> bool:
        """A GET succeeds now: not in a cold class, or restored."""
        return not self.cold or self.restored_until is not None

    @property
    def state(self) -> str:
        if not self.cold:
            return "instant"
        if self.restoring:
            return "restoring"
        return "restored" if self.restored_until else "archived"


@dataclass(frozen=True)
class Medium:
    provider: str
    media_id: str
    media_type: str
    captured_at: str | None
    camera: str | None
    title: str | None
    filename: str | None
    files: tuple[ArchivedFile, ...]
    sidecar: dict[str, Any] | None = field(default=None, repr=False)
    run_id: str | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def storage_class(self) -> str:
        classes = sorted({f.storage_class for f in self.files})
        return classes[0] if len(classes) == 1 else ",".join(classes) or "-"

    @property
    def state(self) -> str:
        states = {f.state for f in self.files}
        return states.pop() if len(states) == 1 else "partly restored"

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "media_id": self.media_id,
            "type": self.media_type,
            "captured_at": self.captured_at,
            "camera": self.camera,
            "title": self.title,
            "filename": self.filename,
            "size": self.size,
            "storage_class": self.storage_class,
            "state": self.state,
            "has_sidecar": self.sidecar is not None,
            "objects": [
                {
                    "key": f.key,
                    "size": f.size,
                    "storage_class": f.storage_class,
                    "filename": f.filename,
                    "crc32c": f.crc32c,
                    "state": f.state,
                    "restored_until": f.restored_until,
                }
                for f in self.files
            ],
        }


def media_folder(record: MediaRecord) -> str | None:
    """The S3 folder of an archived medium (its record keeps the object key, or the folder for several files)."""
    if not record.s3_key:
        return None
    return record.s3_key if record.s3_key.endswith("/") else record.s3_key.rsplit("/", 1)[0] + "/"


def list_folder(s3: Any, bucket: str, folder: str) -> list[dict[str, Any]]:
    """The objects of a media folder, without its sidecar, in key order."""
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for obj in page.get("Contents", []):
            if obj["Key"].rsplit("/", 1)[-1] != SIDECAR_NAME:
                found.append(obj)
    return sorted(found, key=lambda o: o["Key"])


def completed_records(state: StateStore, provider: str | None = None) -> list[MediaRecord]:
    records = state.media.list_by_status(MediaStatus.COMPLETED, MAX_MEDIA, provider=provider)
    return [r for r in records if r.s3_key]


def load_medium(s3: Any, bucket: str, record: MediaRecord, *, heads: bool = True) -> Medium:
    """A medium from its record, its sidecar and its objects (HeadObject per cold object for its restore state)."""
    folder = media_folder(record) or ""
    sidecar = read_sidecar(s3, bucket, sidecar_key(folder))
    by_key = {o["key"]: o for o in (sidecar or {}).get("archive", {}).get("objects", [])}
    files = []
    for obj in list_folder(s3, bucket, folder):
        key, storage_class = obj["Key"], obj.get("StorageClass", "STANDARD")
        restore = None
        if heads and storage_class in COLD_CLASSES:
            restore = s3.head_object(Bucket=bucket, Key=key).get("Restore")
        known = by_key.get(key, {})
        files.append(
            ArchivedFile(
                key=key,
                size=int(obj["Size"]),
                storage_class=storage_class,
                filename=known.get("filename") or key.rsplit("/", 1)[-1],
                crc32c=known.get("crc32c"),
                restore=restore,
            )
        )
    listing = (sidecar or {}).get("listing", {})
    return Medium(
        provider=record.provider,
        media_id=record.media_id,
        media_type=listing.get("type") or "video",
        captured_at=listing.get("captured_at") or record.captured_at,
        camera=listing.get("camera_model"),
        title=listing.get("title"),
        filename=listing.get("filename") or record.filename,
        files=tuple(files),
        sidecar=sidecar,
        run_id=record.run_id,
    )


def load_archive(s3: Any, bucket: str, records: Iterable[MediaRecord], *, heads: bool = True) -> Iterator[Medium]:
    for record in records:
        yield load_medium(s3, bucket, record, heads=heads)


# --- the bucket ------------------------------------------------------------------------------------------


def archive_bucket(ctx: Context, args: Any) -> str:
    """The archive bucket: `--bucket`, the local stack's fixed name, or the deployed stack's output (its name is
    generated by CloudFormation, so it is looked up rather than guessed)."""
    if getattr(args, "bucket", None):
        return str(args.bucket)
    if ctx.settings.aws_endpoint_url:
        return ctx.settings.bucket_name
    stack = f"{STACK_NAME_PREFIX}-{args.env}"
    with aws_call(f"stack {stack}", ctx):
        answer = ctx.client("cloudformation").describe_stacks(StackName=stack)
    for output in answer["Stacks"][0].get("Outputs", []):
        if output.get("OutputKey") == "ArchiveBucketName":
            return str(output["OutputValue"])
    raise MissingResource(f"stack {stack} has no ArchiveBucketName output: pass --bucket")


# --- selectors ---------------------------------------------------------------------------------------------


def has_selector(args: Any) -> bool:
    return bool(args.media_id or args.since or args.until or args.camera or args.media_type or args.name)


def _captured_date(medium: Medium) -> date | None:
    if not medium.captured_at:
        return None
    try:
        moment: datetime = parse_iso_utc(medium.captured_at)
    except ValueError:
        return None
    return moment.date()


def matches(medium: Medium, args: Any) -> bool:
    if args.media_id and medium.media_id not in args.media_id:
        return False
    captured = _captured_date(medium)
    if args.since and (captured is None or captured < args.since):
        return False
    if args.until and (captured is None or captured > args.until):
        return False
    if args.camera and (medium.camera or "").casefold() != args.camera.casefold():
        return False
    if args.media_type and medium.media_type != args.media_type.lower():
        return False
    if args.name:
        names = [medium.filename or "", *(f.filename for f in medium.files), *(f.key for f in medium.files)]
        pattern = args.name.casefold()
        if not any(fnmatch.fnmatchcase(n.rsplit("/", 1)[-1].casefold(), pattern) for n in names):
            return False
    return True


def select(media: Iterable[Medium], args: Any) -> list[Medium]:
    return [m for m in media if matches(m, args)]


def selected_records(state: StateStore, args: Any, provider: str) -> Sequence[MediaRecord]:
    """COMPLETED records, narrowed by `--media-id` before anything reads S3."""
    records = completed_records(state, provider)
    if args.media_id:
        records = [r for r in records if r.media_id in args.media_id]
    return records
