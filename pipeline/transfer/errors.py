"""Typed failures of a transfer, so the caller can decide between "retry later", "gone", and "alarm".

Why a hierarchy with a `transient` flag: inside the engine, `transient` decides what `call_with_retry` retries (a
reset connection, a 503, a body cut short); outside, it tells the downloader whether another SQS delivery can
help. No message here ever contains a pre-signed URL's query string (see `pipeline.observability.redaction`).
Every one of them is a `SyncError`, so callers outside the engine catch one family.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import SyncError

if TYPE_CHECKING:
    from pipeline.transfer.checkpoint import MultipartCheckpoint


class TransferError(SyncError):
    """Base class: the transfer did not produce a verified object in S3."""

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class SourceError(TransferError):
    """The source answered with an error status, refused a URL, or the connection failed.

    `status` is the HTTP status (None for connection-level failures); a 404 means the medium is gone at the
    source. `retry_after` (seconds) is honoured by `call_with_retry` as a minimum wait.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, transient=transient)
        self.status = status
        self.retry_after = retry_after


class SizeMismatch(TransferError):
    """Byte counts disagree: announced vs served, a range vs what was asked, or the provider's expected size.

    A body cut short is raised as a transient SizeMismatch (a dropped connection looks exactly like that), so it
    is retried; if every retry is cut short too, this is what the caller sees.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: int | None = None,
        actual: int | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message, transient=transient)
        self.expected = expected
        self.actual = actual


class ChecksumMismatch(TransferError):
    """Bytes differ from what was recorded or what S3 computed (a changed source, or corruption in transit)."""


class SinkError(TransferError):
    """S3 refused a call after botocore's own retries; `code` is the S3 error code when there is one."""

    def __init__(self, message: str, *, code: str | None = None, transient: bool = False) -> None:
        super().__init__(message, transient=transient)
        self.code = code


class DeadlineReached(TransferError):
    """The transfer stopped cleanly before the deadline; the multipart upload is kept for `resume`.

    Transient by nature: the next invocation continues from `checkpoint` (already passed to `on_checkpoint`).
    `checkpoint` is None when the deadline was too close to start anything at all (nothing to resume, nothing
    to clean up). The one deadline exception of the project's transfers: the downloader catches it as it is.
    """

    transient = True

    def __init__(self, checkpoint: MultipartCheckpoint | None) -> None:
        if checkpoint is None:
            message = "deadline too close to start the transfer"
        else:
            message = f"deadline reached after {len(checkpoint.parts)} part(s); upload kept for resume"
        super().__init__(message)
        self.checkpoint = checkpoint

    @property
    def bytes_done(self) -> int:
        """Bytes already in the kept upload (0 when nothing was started)."""
        return 0 if self.checkpoint is None else self.checkpoint.bytes_done
