"""The small JSON object kept beside every archived medium: what the cloud knows and the video file does not.

Why: an archive is worth what a person can get back out of it. The cloud library's own facts (type, camera,
capture and upload times, title, chapters, HiLight moments) are gone once the cloud copy is; the state table is
a pipeline's bookkeeping, not something a person browses. The sidecar is what `scripts/catalog.py` and
`scripts/restore.py` read, next to the media's objects, at `{media folder}/_media.json`.

Rules the writer keeps:
- **written after the media's objects, and only for objects that are there**: every key it lists is checked with
  HeadObject (size and CRC32C as the transfer recorded them) before the sidecar is put, so a sidecar never claims a
  video that is not in the bucket;
- **instantly readable**: put in STANDARD; the media lifecycle rule only moves objects larger than 128 KiB
  (`infra_cdk.settings.LIFECYCLE_MIN_OBJECT_BYTES`), and a sidecar is far smaller (`MAX_SIDECAR_BYTES`);
- the name cannot collide with a medium's file: `pipeline.keys.safe_filename` never starts a name with `_`.

The listing facts (camera model, title, duration, resolution, moments count, upload time) come with the download
message (`MediaItem.sidecar_facts`): the downloader has the message, not the listing row, and GoPro's only
per-medium read the pipeline makes is the download descriptor, which carries none of them. A provider with a
single-medium read (`describe`) adds its answer on top. HiLight moments are fetched with one call to the
provider's `moments` when the listing counted some; its failure leaves `moments` null with a note in `notes`,
never failing the download. A fact nobody listed is null.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws_errors import OBJECT_NOT_FOUND, error_code
from pipeline.clock import iso_utc, utc_now
from pipeline.errors import SyncError
from pipeline.messages import DownloadMessage
from pipeline.providers.base import CloudProvider, MediaItem, Moment
from pipeline.transfer.archive import META_ITEM, META_ORIGINAL_FILENAME
from pipeline.transfer.model import CHECKSUM_METADATA_KEY, TransferResult

log = logging.getLogger(__name__)

SIDECAR_NAME = "_media.json"
SIDECAR_VERSION = 1
SIDECAR_STORAGE_CLASS = "STANDARD"
MAX_SIDECAR_BYTES = 64 * 1024  # far under the lifecycle's 128 KiB floor: a sidecar is never moved to a cold class
# HiLight moments kept in one sidecar: far more than a person marks, and few enough (about 40 bytes each) that the
# moments alone never push a sidecar over MAX_SIDECAR_BYTES, which would fail the medium's delivery.
MAX_SIDECAR_MOMENTS = 500
# Listing facts the message carries (null when the listing did not state them).
MESSAGE_FACTS = ("camera_model", "title", "duration_s", "moments_count")


class SidecarError(SyncError):
    """The sidecar could not be written truthfully: an object it would list is missing or differs."""

    transient = True  # the objects may be mid-overwrite; the redelivery rechecks them


def sidecar_key(object_key: str) -> str:
    """The sidecar beside an object (or a media folder ending in `/`)."""
    folder = object_key if object_key.endswith("/") else object_key.rsplit("/", 1)[0] + "/"
    return folder + SIDECAR_NAME


@dataclass(frozen=True)
class ArchivedObject:
    """One object of a medium as the sidecar lists it."""

    key: str
    size: int
    crc32c: str  # S3's base64 form
    item: int
    filename: str  # the provider's original file name (the key holds a sanitised one)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: datetime | None) -> str | None:
    return iso_utc(value) if value else None


def _resolution(width: int | None, height: int | None) -> dict[str, int] | None:
    return {"width": width, "height": height} if width and height else None


def listing_facts(message: DownloadMessage, item: MediaItem | None) -> dict[str, Any]:
    """The listing row: from the message, with a described item's facts on top when there is one."""
    facts: dict[str, Any] = {
        "type": message.media_type or "video",
        "filename": message.filename,
        "captured_at": message.captured_at,
        "uploaded_at": message.uploaded_at,
        "size": message.size,
        "item_count": message.item_count,
        "resolution": _resolution(message.width, message.height),
        **{name: getattr(message, name) for name in MESSAGE_FACTS},
        "moments": None,
    }
    if item is not None:
        facts.update(
            type=item.media_type.value,
            filename=item.filename or message.filename,
            captured_at=_iso(item.captured_at) or message.captured_at,
            uploaded_at=_iso(item.created_at) or message.uploaded_at,
            size=item.size if item.size is not None else message.size,
        )
        for name in (*MESSAGE_FACTS, "item_count"):
            if getattr(item, name) is not None:
                facts[name] = getattr(item, name)
        facts["resolution"] = _resolution(item.width, item.height) or facts["resolution"]
    return facts


def build_sidecar(
    message: DownloadMessage,
    objects: Sequence[ArchivedObject],
    item: MediaItem | None,
    *,
    archived_at: str | None = None,
    moments: Sequence[Moment] | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The sidecar document (version 1). `chapters` are the objects' original file names in plan order;
    `moments` the HiLight moments when they were fetched (None: not asked, or the call failed, see `notes`)."""
    facts = listing_facts(message, item)
    if facts["item_count"] is None:
        facts["item_count"] = len(objects)
    notes = list(notes)
    if moments is not None:
        facts["moments"] = [m.as_json() for m in moments[:MAX_SIDECAR_MOMENTS]]
        if len(moments) > MAX_SIDECAR_MOMENTS:
            notes.append(f"moments: {len(moments)} fetched, the first {MAX_SIDECAR_MOMENTS} kept")
    return {
        "sidecar_version": SIDECAR_VERSION,
        "provider": message.provider,
        "media_id": message.media_id,
        "listing": facts,
        "chapters": [o.filename for o in objects],
        "archive": {
            "objects": [o.as_json() for o in objects],
            "total_size": sum(o.size for o in objects),
            "run_id": message.run_id,
            "archived_at": archived_at or iso_utc(utc_now()),
        },
        "notes": notes,
    }


class SidecarWriter:
    """Checks a medium's objects are in the bucket as recorded, then puts its sidecar beside them."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def describe(self, provider: CloudProvider, media_id: str) -> MediaItem | None:
        """The provider's own single-medium read, if it has one (the default would only re-resolve the download,
        which adds nothing the message lacks); a failure only costs the richer facts, never the medium."""
        if type(provider).describe is CloudProvider.describe:
            return None
        try:
            return provider.describe(media_id)
        except Exception as exc:  # the sidecar falls back to the message's facts
            log.warning("could not describe %s for its sidecar: %s", media_id, type(exc).__name__)
            return None

    def moments(self, provider: CloudProvider, message: DownloadMessage) -> tuple[tuple[Moment, ...] | None, str]:
        """The HiLight moments when the listing counted some: one provider call (its HTTP layer retries a
        transient answer as for any call, nothing more). Returns (moments, note): a failure costs only the moments
        (None) and says so in the note, never the medium."""
        if not message.moments_count:
            return None, ""
        try:
            return provider.moments(message.media_id), ""
        except Exception as exc:  # whatever the provider raised, the objects are archived and checked
            log.warning("could not fetch the moments of %s: %s", message.media_id, type(exc).__name__)
            return None, f"moments: {message.moments_count} listed, fetching them failed ({_name(exc)})"

    def archived(self, key: str, *, size: int, crc32c: str | None) -> ArchivedObject:
        """The object at `key` as the sidecar lists it, checked against what was recorded (size, CRC32C);
        SidecarError when it is missing or differs. The original file name and item number come from the
        object's own metadata, written by the downloader with the object."""
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) in OBJECT_NOT_FOUND:
                raise SidecarError(f"{key} is not in the bucket; no sidecar claims it") from None
            raise
        stored_size = int(head.get("ContentLength", -1))
        if stored_size != size:
            raise SidecarError(f"{key} holds {stored_size} bytes, not the {size} recorded")
        stored = whole_object_crc32c(head)
        if crc32c is not None and stored not in (None, crc32c):
            raise SidecarError(f"{key} has CRC32C {stored}, not the {crc32c} recorded")
        metadata = {k.lower(): v for k, v in head.get("Metadata", {}).items()}
        original = urllib.parse.unquote(metadata.get(META_ORIGINAL_FILENAME, "")) or key.rsplit("/", 1)[-1]
        item = metadata.get(META_ITEM, "1")
        return ArchivedObject(
            key=key,
            size=stored_size,
            crc32c=crc32c or stored or "",
            item=int(item) if item.isdigit() else 1,
            filename=original,
        )

    def put(self, document: dict[str, Any]) -> str:
        """Writes a document built by `build_sidecar` beside its first object; returns its key."""
        objects = document["archive"]["objects"]
        if not objects:
            raise SidecarError(f"{document.get('media_id')} has no objects to describe")
        body = json.dumps(document, sort_keys=True, indent=1, ensure_ascii=True).encode("ascii")
        if len(body) > MAX_SIDECAR_BYTES:
            raise SidecarError(f"the sidecar of {document['media_id']} is {len(body)} bytes, over the limit")
        key = sidecar_key(objects[0]["key"])
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            StorageClass=SIDECAR_STORAGE_CLASS,
            ChecksumAlgorithm="CRC32C",
        )
        return key

    def write(self, message: DownloadMessage, provider: CloudProvider, results: Sequence[TransferResult]) -> str:
        """The one call the downloader makes: after the objects, before the record is COMPLETED."""
        objects = [self.archived(r.key, size=r.size, crc32c=r.checksum.value) for r in results]
        item = self.describe(provider, message.media_id)
        moments, note = self.moments(provider, message)
        return self.put(build_sidecar(message, objects, item, moments=moments, notes=[note] if note else []))


def _name(exc: Exception) -> str:
    """The error's class and HTTP status when it has one (never its text, which may quote an answer)."""
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}, HTTP {status}" if isinstance(status, int) else type(exc).__name__


def whole_object_crc32c(head: dict[str, Any]) -> str | None:
    """The object's whole-object CRC32C from a HeadObject answer: the engine's metadata copy (multipart uploads
    with COMPOSITE checksums keep it there), else S3's own value unless it is a composite one (`...-<parts>`)."""
    metadata = {k.lower(): v for k, v in head.get("Metadata", {}).items()}
    value = metadata.get(CHECKSUM_METADATA_KEY)
    if value:
        return str(value)
    stored = head.get("ChecksumCRC32C")
    return str(stored) if stored and "-" not in stored else None


def read_sidecar(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """A sidecar as stored, or None when there is none (or it is not one)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_SIDECAR_BYTES + 1)
    except ClientError as exc:
        if error_code(exc) in OBJECT_NOT_FOUND:
            return None
        raise
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) and document.get("sidecar_version") else None
