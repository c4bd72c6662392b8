"""What the pipeline did to S3, seen from its own S3 client: every upload started, completed, aborted, resumed.

Why a ledger and not only S3's view at the end: "no key uploaded twice" counts the *completing* calls per key
(CompleteMultipartUpload and PutObject answered with success), and "no multipart upload left open that the
pipeline knows of" needs to know which invocation started each upload (a killed one cannot clean up; a live one
must complete, abort or checkpoint what it starts) and which uploads were ever saved in a checkpoint.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.aws_faults import api_params, stash_params
from tests.chaos.kill import Invocation, KillSwitch


@dataclass
class Upload:
    key: str
    upload_id: str
    invocation: Invocation | None
    completed: bool = False
    aborted: bool = False

    @property
    def started_by_killed_invocation(self) -> bool:
        return self.invocation is not None and self.invocation.killed_at is not None


@dataclass
class UploadLedger:
    kills: KillSwitch
    uploads: dict[str, Upload] = field(default_factory=dict)
    completions: Counter[str] = field(default_factory=Counter)  # key -> successful completing calls
    checkpointed: set[str] = field(default_factory=set)  # upload ids ever saved in a checkpoint
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, app: Any, client_for: Callable[[str], Any]) -> None:
        s3 = client_for("s3")
        stash_params(s3)
        s3.meta.events.register("after-call.s3.CreateMultipartUpload", self._created)
        s3.meta.events.register("after-call.s3.CompleteMultipartUpload", self._completed)
        s3.meta.events.register("after-call.s3.PutObject", self._put)
        s3.meta.events.register("after-call.s3.AbortMultipartUpload", self._aborted)
        save = app.state.media.save_checkpoint

        def save_checkpoint(
            provider: str, media_id: str, *args: Any, checkpoint: Mapping[str, Any], **kw: Any
        ) -> Any:
            upload_id = (checkpoint.get("multipart") or {}).get("upload_id")
            if isinstance(upload_id, str):
                with self._lock:
                    self.checkpointed.add(upload_id)
            return save(provider, media_id, *args, checkpoint=checkpoint, **kw)

        app.state.media.save_checkpoint = save_checkpoint

    def duplicated_keys(self) -> dict[str, int]:
        with self._lock:
            return {key: n for key, n in self.completions.items() if n > 1}

    # --- hooks ---------------------------------------------------------------------------------------------

    @staticmethod
    def _ok(http_response: Any, parsed: Mapping[str, Any]) -> bool:
        return getattr(http_response, "status_code", 500) < 300 and "Error" not in parsed

    def _created(self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self._ok(http_response, parsed):
            key = str(api_params(context).get("Key", ""))
            upload = Upload(key, str(parsed["UploadId"]), self.kills.current)
            with self._lock:
                self.uploads[upload.upload_id] = upload

    def _completed(self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self._ok(http_response, parsed):
            params = api_params(context)
            with self._lock:
                self.completions[str(params.get("Key", ""))] += 1
                upload = self.uploads.get(str(params.get("UploadId", "")))
                if upload is not None:
                    upload.completed = True

    def _put(self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self._ok(http_response, parsed):
            with self._lock:
                self.completions[str(api_params(context).get("Key", ""))] += 1

    def _aborted(self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self._ok(http_response, parsed):
            with self._lock:
                upload = self.uploads.get(str(api_params(context).get("UploadId", "")))
                if upload is not None:
                    upload.aborted = True
