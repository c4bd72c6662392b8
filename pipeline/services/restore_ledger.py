"""Restore requests as the state table keeps them: what `scripts/restore.py --yes` asked S3 to thaw, and which of
those objects S3 has since reported ready.

Why in the state table: the person who asked and the Lambda that hears S3's `s3:ObjectRestore:Completed` events
must agree on one list, so the completion message can say "all 3 chapters of your request are ready" once, not
once per object. Items (none has the status attribute, so the status index never sees them):

- `restore#<request id>`: tier, days, when, how many objects, how many are ready, and when the one message went;
- `restore-object#<key>`: the request an object belongs to (the latest one asking for it), its medium and name.

Writes are conditional where two events could race: an object is counted ready once (`ready_at` set only if
absent), and the message is claimed once (`notified_at` set only if absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline import resources
from pipeline.aws_errors import error_code

PK = resources.TABLE_PARTITION_KEY
REQUEST_PREFIX = "restore#"
OBJECT_PREFIX = "restore-object#"
CONDITION_FAILED = "ConditionalCheckFailedException"


@dataclass(frozen=True)
class RestoreObject:
    key: str
    media_id: str
    filename: str
    size: int


@dataclass(frozen=True)
class RestoreRequest:
    request_id: str
    tier: str
    days: int
    requested_at: str
    objects: tuple[RestoreObject, ...]
    ready: int = 0
    notified_at: str | None = None

    @property
    def complete(self) -> bool:
        return self.ready >= len(self.objects)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class RestoreLedger:
    def __init__(self, client: Any, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def record(self, request: RestoreRequest) -> None:
        """Writes the request, then points each of its objects at it (a newer request takes an object over)."""
        self._db.put_item(
            TableName=self._table,
            Item={
                PK: _s(REQUEST_PREFIX + request.request_id),
                "tier": _s(request.tier),
                "days": _n(request.days),
                "requested_at": _s(request.requested_at),
                "object_count": _n(len(request.objects)),
                "ready_count": _n(0),
                "objects": {
                    "L": [
                        {
                            "M": {
                                "key": _s(o.key),
                                "media_id": _s(o.media_id),
                                "filename": _s(o.filename),
                                "size": _n(o.size),
                            }
                        }
                        for o in request.objects
                    ]
                },
            },
        )
        for obj in request.objects:
            self._db.put_item(
                TableName=self._table,
                Item={PK: _s(OBJECT_PREFIX + obj.key), "request_id": _s(request.request_id)},
            )

    def get(self, request_id: str) -> RestoreRequest | None:
        item = self._db.get_item(
            TableName=self._table, Key={PK: _s(REQUEST_PREFIX + request_id)}, ConsistentRead=True
        )
        return _request(item["Item"]) if "Item" in item else None

    def request_of(self, key: str) -> str | None:
        item = self._db.get_item(TableName=self._table, Key={PK: _s(OBJECT_PREFIX + key)}, ConsistentRead=True)
        return item["Item"]["request_id"]["S"] if "Item" in item else None

    def mark_ready(self, key: str, at: str) -> RestoreRequest | None:
        """Counts `key` ready in its request once (a redelivered event is not counted again); returns the request
        as it is now, or None when no recorded request asked for this object."""
        request_id = self.request_of(key)
        if request_id is None:
            return None
        try:
            self._db.update_item(
                TableName=self._table,
                Key={PK: _s(OBJECT_PREFIX + key)},
                UpdateExpression="SET ready_at = :at",
                ConditionExpression="attribute_not_exists(ready_at) AND request_id = :r",
                ExpressionAttributeValues={":at": _s(at), ":r": _s(request_id)},
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            return self.get(request_id)
        answer = self._db.update_item(
            TableName=self._table,
            Key={PK: _s(REQUEST_PREFIX + request_id)},
            UpdateExpression="ADD ready_count :one",
            ConditionExpression="attribute_exists(#pk)",
            ExpressionAttributeNames={"#pk": PK},
            ExpressionAttributeValues={":one": _n(1)},
            ReturnValues="ALL_NEW",
        )
        return _request(answer["Attributes"])

    def claim_notification(self, request_id: str, at: str) -> bool:
        """True once per request: the caller that gets True sends the one message."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={PK: _s(REQUEST_PREFIX + request_id)},
                UpdateExpression="SET notified_at = :at",
                ConditionExpression="attribute_exists(#pk) AND attribute_not_exists(notified_at)",
                ExpressionAttributeNames={"#pk": PK},
                ExpressionAttributeValues={":at": _s(at)},
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise
        return True

    def release_notification(self, request_id: str) -> None:
        """Undoes `claim_notification` when the message could not be sent, so a retry sends it."""
        self._db.update_item(
            TableName=self._table,
            Key={PK: _s(REQUEST_PREFIX + request_id)},
            UpdateExpression="REMOVE notified_at",
        )

    def requests(self, request_ids: Sequence[str]) -> list[RestoreRequest]:
        found = (self.get(r) for r in request_ids)
        return [r for r in found if r is not None]


def _request(item: dict[str, Any]) -> RestoreRequest:
    objects = tuple(
        RestoreObject(
            key=o["M"]["key"]["S"],
            media_id=o["M"]["media_id"]["S"],
            filename=o["M"]["filename"]["S"],
            size=int(o["M"]["size"]["N"]),
        )
        for o in item.get("objects", {}).get("L", [])
    )
    return RestoreRequest(
        request_id=item[PK]["S"][len(REQUEST_PREFIX) :],
        tier=item["tier"]["S"],
        days=int(item["days"]["N"]),
        requested_at=item["requested_at"]["S"],
        objects=objects,
        ready=int(item.get("ready_count", {"N": "0"})["N"]),
        notified_at=item.get("notified_at", {}).get("S"),
    )
