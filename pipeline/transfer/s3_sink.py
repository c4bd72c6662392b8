"""The S3 side of one transfer: each S3 call a few lines around one client call, errors mapped once.

Why a sink object: the strategies only say "create, upload this part, complete, put this body"; what S3 wants
(checksum headers, tagging, the part list) and how its refusals map onto `TransferError`s is written here once.
The abort of a multipart upload is registered as a failure cleanup at the very line that creates (or adopts) it,
as s3transfer's `CreateMultipartUploadTask` does, so no failure path can leave an invisible, billed upload.
S3 calls rely on botocore's standard retry mode; what is left after it is a `SinkError` (transient for S3's
throttling and 5xx codes) or a `ChecksumMismatch` when S3 refused the bytes' checksum.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import NO_SUCH_UPLOAD, TRANSIENT_S3, error_code
from pipeline.observability.redaction import describe_exception
from pipeline.transfer.buffers import PartBody
from pipeline.transfer.checkpoint import CompletedPart
from pipeline.transfer.checksums import ALGORITHM, from_base64, to_base64
from pipeline.transfer.errors import ChecksumMismatch, SinkError, TransferError
from pipeline.transfer.model import CHECKSUM_METADATA_KEY, COMPOSITE, FULL_OBJECT, TransferRequest

log = logging.getLogger(__name__)

_DIGEST_ERRORS = frozenset({"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "InvalidChecksum"})
_S3_ERRORS = (ClientError, BotoCoreError)
#: Registers a callback to run (with a reason) if the transfer fails.
RegisterCleanup = Callable[[Callable[[str], None]], None]


def supports_full_object(s3: Any) -> bool:
    """Whether this botocore knows CompleteMultipartUpload's ChecksumType (FULL_OBJECT checksums)."""
    try:
        members = s3.meta.service_model.operation_model("CompleteMultipartUpload").input_shape.members
    except Exception:  # a stub client without a service model
        return False
    return "ChecksumType" in members


def resolve_checksum_type(s3: Any, wanted: str) -> str:
    """`auto` becomes FULL_OBJECT when botocore supports it, else COMPOSITE; explicit choices stay."""
    if wanted == "auto":
        return FULL_OBJECT if supports_full_object(s3) else COMPOSITE
    return wanted


def sink_error(operation: str, exc: BaseException) -> TransferError:
    code = error_code(exc)
    if isinstance(exc, ClientError):
        code = code or "Unknown"
        if code in _DIGEST_ERRORS:
            return ChecksumMismatch(f"S3 {operation} refused the bytes' checksum ({code})")
        return SinkError(f"S3 {operation} failed: {code}", code=code, transient=code in TRANSIENT_S3)
    return SinkError(f"S3 {operation} failed: {describe_exception(exc)}", transient=True)


class ListedPart(NamedTuple):
    """One part as ListParts reports it; `crc32c` is S3's own record of the part's CRC32C (the one it checked the
    bytes against on upload), None when S3 gives none (an emulator, or an upload made without the algorithm)."""

    etag: str
    size: int
    crc32c: int | None


def _crc_or_none(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return from_base64(value.split("-")[0])
    except ValueError:
        return None


class S3Sink:
    """One object's S3 calls; `upload_id` is the multipart upload this transfer owns (None when there is none)."""

    def __init__(
        self, s3: Any, req: TransferRequest, *, checksum_type: str, register_cleanup: RegisterCleanup
    ) -> None:
        self.s3 = s3
        self.req = req
        self.checksum_type = checksum_type
        self.upload_id: str | None = None
        self.bytes_uploaded = 0
        self._register_cleanup = register_cleanup
        self._lock = threading.Lock()

    def _tagging(self) -> dict[str, str]:
        return {"Tagging": urlencode(dict(self.req.tags))} if self.req.tags else {}

    def adopt(self, upload_id: str) -> None:
        """Take over a checkpoint's upload: ours from now on, so any failure aborts it."""
        self.upload_id = upload_id
        self._register_cleanup(self.abort)

    def create(self) -> str:
        """CreateMultipartUpload (once: later calls return the same upload), its abort registered at once."""
        if self.upload_id is not None:
            return self.upload_id
        kwargs: dict[str, Any] = {
            "Bucket": self.req.bucket,
            "Key": self.req.key,
            "ContentType": self.req.content_type,
            "Metadata": dict(self.req.metadata),
            "ChecksumAlgorithm": ALGORITHM,
            **self._tagging(),
        }
        if self.checksum_type == FULL_OBJECT:
            kwargs["ChecksumType"] = FULL_OBJECT
        try:
            self.upload_id = str(self.s3.create_multipart_upload(**kwargs)["UploadId"])
        except _S3_ERRORS as exc:
            raise sink_error("CreateMultipartUpload", exc) from None
        self._register_cleanup(self.abort)
        return self.upload_id

    def _send(self, operation: str, call: Callable[..., Any], buf: bytearray, length: int, **params: Any) -> Any:
        """One request whose body is `buf[:length]` (UploadPart, PutObject), counted once it is accepted."""
        try:
            with PartBody(buf, length) as body:
                resp = call(Bucket=self.req.bucket, Key=self.req.key, Body=body, ContentLength=length, **params)
        except _S3_ERRORS as exc:
            raise sink_error(operation, exc) from None
        with self._lock:
            self.bytes_uploaded += length
        return resp

    def upload_part(self, number: int, buf: bytearray, length: int, crc: int) -> CompletedPart:
        upload_id = self.upload_id
        if upload_id is None:
            raise SinkError("no multipart upload to add a part to")
        resp = self._send(
            f"UploadPart {number}",
            self.s3.upload_part,
            buf,
            length,
            UploadId=upload_id,
            PartNumber=number,
            ChecksumAlgorithm=ALGORITHM,
            ChecksumCRC32C=to_base64(crc),
        )
        return CompletedPart(number=number, etag=str(resp["ETag"]), crc32c=crc, size=length)

    def complete(self, parts: Sequence[CompletedPart], whole_crc: int) -> Mapping[str, Any]:
        kwargs: dict[str, Any] = {
            "Bucket": self.req.bucket,
            "Key": self.req.key,
            "UploadId": self.upload_id,
            "MultipartUpload": {
                "Parts": [
                    {"PartNumber": p.number, "ETag": p.etag, "ChecksumCRC32C": to_base64(p.crc32c)} for p in parts
                ]
            },
        }
        if self.checksum_type == FULL_OBJECT:
            kwargs.update(ChecksumCRC32C=to_base64(whole_crc), ChecksumType=FULL_OBJECT)
        try:
            resp = self.s3.complete_multipart_upload(**kwargs)
        except _S3_ERRORS as exc:
            raise sink_error("CompleteMultipartUpload", exc) from None
        self.upload_id = None  # completed: nothing left to abort
        return resp

    def abort(self, reason: str) -> None:
        """Abort the upload if there still is one; a failure to abort is logged (the lifecycle rule is the
        backstop), never raised over the error that caused it."""
        upload_id, self.upload_id = self.upload_id, None
        if upload_id is None:
            return
        try:
            self.s3.abort_multipart_upload(Bucket=self.req.bucket, Key=self.req.key, UploadId=upload_id)
            log.info("aborted multipart upload for s3://%s/%s (%s)", self.req.bucket, self.req.key, reason)
        except _S3_ERRORS as exc:
            log.error("could not abort multipart upload %s: %s", upload_id, describe_exception(exc))

    def list_parts(self, upload_id: str) -> dict[int, ListedPart] | None:
        """The parts S3 holds for an upload (every page), or None if it no longer exists."""
        listed: dict[int, ListedPart] = {}
        paginator = self.s3.get_paginator("list_parts")
        try:
            for page in paginator.paginate(Bucket=self.req.bucket, Key=self.req.key, UploadId=upload_id):
                for part in page.get("Parts", []):
                    value = part.get("ChecksumCRC32C")
                    listed[int(part["PartNumber"])] = ListedPart(
                        etag=str(part["ETag"]).strip('"'),
                        size=int(part["Size"]),
                        crc32c=_crc_or_none(value),
                    )
        except _S3_ERRORS as exc:
            if error_code(exc) == NO_SUCH_UPLOAD:
                return None
            raise sink_error("ListParts", exc) from None
        return listed

    def put(self, buf: bytearray, length: int, crc: int) -> Mapping[str, Any]:
        """PutObject of `buf[:length]`, its CRC32C sent for S3 to check and kept in the metadata."""
        value = to_base64(crc)
        return self._send(
            "PutObject",
            self.s3.put_object,
            buf,
            length,
            ContentType=self.req.content_type,
            Metadata={**self.req.metadata, CHECKSUM_METADATA_KEY: value},
            ChecksumCRC32C=value,
            **self._tagging(),
        )
