"""The files of one medium into the archive: keys, object metadata, resume points, URL refresh, one result each.

Why apart from the downloader: this is the only part of archiving a medium that talks to the transfer seam; the
downloader around it decides what the outcome means for the record and the queue. It is also the one place the
stored checkpoint (`{"key": ..., "multipart": {...}}` in the state record) is turned into the engine's typed
`MultipartCheckpoint` and back, so neither the state store nor the engine sees the other's shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pipeline.clock import parse_iso
from pipeline.deadline import Deadline
from pipeline.keys import encode_metadata_value, object_key
from pipeline.messages import DownloadMessage
from pipeline.providers.base import CloudProvider, DownloadPlan, DownloadSource, ListedFacts, MediaType
from pipeline.providers.errors import IncompleteMedium
from pipeline.services.content_hosts import ContentHostRecorder
from pipeline.state import StateStore
from pipeline.transfer.archive import (
    META_CAPTURED_AT,
    META_ITEM,
    META_MEDIA_ID,
    META_ORIGINAL_FILENAME,
    META_PROVIDER,
    META_RUN_ID,
)
from pipeline.transfer.checkpoint import MultipartCheckpoint
from pipeline.transfer.checksums import Checksum
from pipeline.transfer.model import TransferResult

log = logging.getLogger(__name__)


class FileTransfer(Protocol):
    """The seam to the transfer engine (`pipeline.transfer.archive.S3FileTransfer`); raises DeadlineReached,
    carrying the checkpoint, at the deadline."""

    def existing(self, key: str, media_id: str, source: DownloadSource) -> TransferResult | None: ...

    def __call__(
        self,
        source: DownloadSource,
        *,
        key: str,
        metadata: Mapping[str, str],
        deadline: Deadline | None,
        resume: MultipartCheckpoint | None,
        on_checkpoint: Callable[[MultipartCheckpoint], None],
        refresh_url: Callable[[], str],
    ) -> TransferResult: ...


class MediumFiles:
    """Transfers the files of a medium's download plan, skipping those already archived."""

    def __init__(self, transfer: FileTransfer, state: StateStore, *, lease_seconds: int) -> None:
        self._transfer = transfer
        self._state = state
        self.lease_seconds = lease_seconds
        self._hosts = ContentHostRecorder(state.runs)

    def archive(
        self,
        message: DownloadMessage,
        provider: CloudProvider,
        owner: str,
        checkpoint: Mapping[str, Any] | None,
        deadline: Deadline | None,
    ) -> list[TransferResult]:
        """One result per file of the medium's plan, in plan order; DeadlineReached when time runs out."""
        media_type = _media_type(message)
        listed = ListedFacts(filename=message.filename, item_count=message.item_count)
        plan = provider.resolve_download(message.media_id, media_type=media_type, listed=listed)
        self._hosts.record(message.run_id, [url for f in plan.files for url in (f.url, f.head_url)])
        captured = _parse_time(message.captured_at)
        results: list[TransferResult] = []
        for source in plan.files:
            key = object_key(message.provider, message.media_id, captured, source.filename)
            existing = self._transfer.existing(key, message.media_id, source)
            if existing is not None:
                log.info("%s is already in S3 with the right size; not downloading it again", key)
                results.append(existing)
                continue
            resume = _resume_point(checkpoint, key)
            metadata = {
                META_PROVIDER: message.provider,
                META_MEDIA_ID: message.media_id,
                META_RUN_ID: message.run_id,
                META_CAPTURED_AT: message.captured_at or "",
                META_ORIGINAL_FILENAME: encode_metadata_value(source.filename),
                META_ITEM: str(source.item_number),
            }

            def save(progress: MultipartCheckpoint, key: str = key) -> None:
                """Called at the upload's creation, every few parts, and at the deadline; renews the lease."""
                written = self._state.media.save_checkpoint(
                    message.provider,
                    message.media_id,
                    owner=owner,
                    checkpoint={"key": key, "multipart": progress.to_json()},
                    lease_seconds=self.lease_seconds,
                )
                if not written:  # a lease lost: the outcome write will be refused too, and say so
                    log.warning("could not save the checkpoint of %s: %s", key, written.refusal)

            def refresh(source: DownloadSource = source) -> str:
                fresh = provider.resolve_download(message.media_id, media_type=media_type, listed=listed)
                url = same_file(fresh, source).url
                self._hosts.record(message.run_id, [url])
                return url

            results.append(
                self._transfer(
                    source,
                    key=key,
                    metadata=metadata,
                    deadline=deadline,
                    resume=resume,
                    on_checkpoint=save,
                    refresh_url=refresh,
                )
            )
        return results


def same_file(plan: DownloadPlan, wanted: DownloadSource) -> DownloadSource:
    """The file of a fresh plan that is `wanted`, matched by `(label, item_number)`, never by position: a fresh
    descriptor may list its entries in another order, or without one (IncompleteMedium, retried later)."""
    for source in plan.files:
        if (source.label, source.item_number) == (wanted.label, wanted.item_number):
            return source
    raise IncompleteMedium(
        f"{plan.media_id}: a fresh descriptor no longer offers {wanted.label} item {wanted.item_number}"
    )


def summarise(results: Sequence[TransferResult]) -> tuple[str, int, Checksum]:
    """(s3_key, size, checksum) the record keeps: the object itself for one file, else the medium's folder with
    the files' checksums joined in plan order."""
    size = sum(r.size for r in results)
    if len(results) == 1:
        return results[0].key, size, results[0].checksum
    s3_key = results[0].key.rsplit("/", 1)[0] + "/"
    return s3_key, size, Checksum(results[0].checksum.algorithm, ",".join(r.checksum.value for r in results))


def _resume_point(stored: Mapping[str, Any] | None, key: str) -> MultipartCheckpoint | None:
    """The typed checkpoint for `key` from what the state store keeps (`{"key": ..., "multipart": {...}}`), the
    one place its JSON form is read; an unusable one is ignored (the transfer starts afresh)."""
    if not stored or stored.get("key") != key or not stored.get("multipart"):
        return None
    try:
        return MultipartCheckpoint.from_json(stored["multipart"])
    except ValueError as exc:
        log.warning("ignoring an unusable checkpoint for %s: %s", key, exc)
        return None


def _media_type(message: DownloadMessage) -> MediaType:
    raw = getattr(message, "media_type", None)
    try:
        return MediaType(raw) if raw else MediaType.VIDEO
    except ValueError:
        return MediaType.VIDEO


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        return None
