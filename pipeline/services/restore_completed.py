"""One SNS message when everything a restore request asked for is readable.

S3 sends one `s3:ObjectRestore:Completed` event per object; the stack sends the archive bucket's events through
EventBridge to the `restore-completed` function (`infra_cdk/components/restores.py`). Each event counts its
object ready in the request `scripts/restore.py --yes` recorded (`pipeline.services.restore_ledger`); the event
that completes a request claims its message with a conditional write and publishes it: what is ready, until
when, and the command that fetches it. A redelivered event counts nothing twice and sends nothing twice. An
object restored outside `restore.py` (no recorded request) is logged and ignored.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.clock import iso_utc, utc_now
from pipeline.services.restore_ledger import RestoreLedger, RestoreRequest

log = logging.getLogger(__name__)

EVENT_NAME = "ObjectRestore:Completed"
EVENTBRIDGE_DETAIL_TYPE = "Object Restore Completed"  # the same event as EventBridge delivers it
MAX_SUBJECT_CHARS = 100  # SNS's limit


@dataclass(frozen=True)
class RestoredObject:
    bucket: str
    key: str
    expires: str | None


def restored_objects(event: Any) -> list[RestoredObject]:
    """The objects whose restore completed, from S3's EventBridge event (what the stack wires) or an S3 event
    notification (`Records`, what a bucket notification would send); anything else gives nothing."""
    if isinstance(event, dict) and event.get("detail-type") == EVENTBRIDGE_DETAIL_TYPE:
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        key = detail.get("object", {}).get("key")
        bucket = detail.get("bucket", {}).get("name")
        if isinstance(key, str) and isinstance(bucket, str):
            return [RestoredObject(bucket=bucket, key=key, expires=detail.get("restore-expiry-time"))]
        return []
    found = []
    records = event.get("Records", []) if isinstance(event, dict) else []
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict) or not str(record.get("eventName", "")).endswith(EVENT_NAME):
            continue
        s3 = record.get("s3", {})
        key = s3.get("object", {}).get("key")
        bucket = s3.get("bucket", {}).get("name")
        if not isinstance(key, str) or not isinstance(bucket, str):
            continue
        data = record.get("glacierEventData", {}).get("restoreEventData", {})
        found.append(
            RestoredObject(
                bucket=bucket,
                key=urllib.parse.unquote_plus(key),  # event keys are URL-encoded, spaces as '+'
                expires=data.get("lifecycleRestorationExpiryTime"),
            )
        )
    return found


def message_for(request: RestoreRequest, environment: str, expires: str | None) -> tuple[str, str]:
    media = sorted({o.media_id for o in request.objects})
    subject = f"GoPro archive ({environment}): {len(media)} media restored, ready to fetch"[:MAX_SUBJECT_CHARS]
    lines = [
        f"Your restore request {request.request_id} ({request.tier}, asked {request.requested_at}) is ready:",
        f"{len(media)} media, {len(request.objects)} files, {sum(o.size for o in request.objects):,} bytes.",
        f"Readable until {expires or f'{request.days} days after the restore finished'}.",
        "",
    ]
    for media_id in media:
        names = [o.filename for o in request.objects if o.media_id == media_id]
        lines.append(f"- {media_id}: {', '.join(names)}")
    selectors = " ".join(f"--media-id {m}" for m in media)
    lines += [
        "",
        "Fetch them (resumable, checked against the archived CRC32C):",
        f"  python scripts/restore.py fetch --env {environment} {selectors} --to ~/gopro-restored",
        "or print download links: add --links instead of --to.",
    ]
    return subject, "\n".join(lines)


class RestoreCompletedService:
    def __init__(
        self,
        *,
        ledger: RestoreLedger,
        sns: Any,
        topic_arn: str,
        environment: str,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._ledger = ledger
        self._sns = sns
        self._topic_arn = topic_arn
        self._environment = environment
        self._now = now

    def handle(self, objects: Iterable[RestoredObject]) -> dict[str, Any]:
        """Counts each object ready; publishes the message of every request this completes. Returns a summary."""
        ready, unknown, published = 0, 0, []
        for obj in objects:
            request = self._ledger.mark_ready(obj.key, iso_utc(self._now()))
            if request is None:
                unknown += 1
                log.info("%s was restored outside scripts/restore.py; no message", obj.key)
                continue
            ready += 1
            if request.complete and self._ledger.claim_notification(request.request_id, iso_utc(self._now())):
                subject, body = message_for(request, self._environment, obj.expires)
                try:
                    self._sns.publish(TopicArn=self._topic_arn, Subject=subject, Message=body)
                except Exception:
                    # Let a retry of this event send it: the claim is released, the counts stay.
                    self._ledger.release_notification(request.request_id)
                    raise
                published.append(request.request_id)
                log.info("restore request %s is ready; message sent", request.request_id)
        return {"ready": ready, "unknown": unknown, "published": published}
