"""AWS faults injected at the botocore level in front of the real moto server (see `aws_faults`)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from tests.chaos.aws_faults import api_params
from tests.chaos.library import media_id, standard

pytestmark = pytest.mark.integration
# Also worth running, but slower or less central: in the long set (make chaos), not in make test.
LONG = pytest.mark.chaos_long
FAMILY = "AWS"


def _key_of(victim: str) -> Any:
    return lambda params: victim in str(params.get("Key", ""))


def _sets_status(status: str) -> Any:
    """An UpdateItem writing `status` (the state store's claim, complete, fail, release)."""

    def match(params: dict[str, Any]) -> bool:
        first = params.get("ExpressionAttributeValues", {}).get(":v0")
        return first == {"S": status} and "#status = :v0" in str(params.get("UpdateExpression", ""))

    return match


def test_s3_slowdown_on_upload_part_is_retried_by_botocore(chaos) -> None:
    run = chaos(standard(), name="S3 SlowDown on UploadPart (botocore retries)", family=FAMILY)
    run.aws.fail("s3", "UploadPart", "SlowDown", status=503, layer="send", attempts=1, count=2)
    result = run.night()
    assert run.verify().completed == 3
    assert run.aws.fired("s3", "UploadPart") == 2
    assert result.report["retried"] == 0  # absorbed inside the invocation, no receive spent


def test_s3_500_on_upload_part_after_botocore_gave_up(chaos) -> None:
    run = chaos(standard(), name="S3 500 on UploadPart (retries exhausted)", family=FAMILY)
    victim = media_id(1)
    run.aws.fail("s3", "UploadPart", "InternalError", status=500, count=2, match=_key_of(victim))
    result = run.night()
    assert run.verify().completed == 3
    assert result.report["retried"] >= 1
    aborted = [u for u in run.ledger.uploads.values() if u.aborted]
    assert aborted, "the failed transfers' uploads were aborted"


def test_s3_slowdown_and_500_on_complete_multipart_upload(chaos) -> None:
    run = chaos(standard(), name="S3 SlowDown/500 on CompleteMultipartUpload", family=FAMILY)
    run.aws.fail("s3", "CompleteMultipartUpload", "SlowDown", status=503, count=1, match=_key_of(media_id(1)))
    run.aws.fail("s3", "CompleteMultipartUpload", "InternalError", status=500, count=1, match=_key_of(media_id(2)))
    run.aws.fail("s3", "CompleteMultipartUpload", "SlowDown", status=503, layer="send", attempts=1, count=2)
    run.night()
    assert run.verify().completed == 3


def test_complete_multipart_upload_succeeds_but_its_answer_is_lost(chaos) -> None:
    run = chaos(standard(), name="CompleteMultipartUpload answer lost", family=FAMILY)
    lost: list[str] = []

    def lose(parsed: dict[str, Any], params: dict[str, Any]) -> None:
        if not lost:
            lost.append(params["Key"])
            raise ReadTimeoutError(endpoint_url="http://moto/complete")

    run.aws.after("s3", "CompleteMultipartUpload", lose)
    run.night()
    assert run.verify().completed == 3  # the redelivery found the object complete and did not upload it again
    assert lost


def test_dynamodb_throughput_errors(chaos) -> None:
    run = chaos(standard(), name="DynamoDB throughput errors", family=FAMILY)
    code = "ProvisionedThroughputExceededException"
    # Absorbed by botocore's retries...
    run.aws.fail("dynamodb", "UpdateItem", code, status=400, layer="send", attempts=1, count=2)
    run.aws.fail("dynamodb", "BatchGetItem", code, status=400, layer="send", attempts=1, count=1)
    # ...and outlasting them, at the claim and at the completion (after the upload).
    run.aws.fail("dynamodb", "UpdateItem", code, status=400, count=1, match=_sets_status("IN_PROGRESS"))
    run.aws.fail("dynamodb", "UpdateItem", code, status=400, count=1, match=_sets_status("COMPLETED"))
    run.night()
    assert run.verify().completed == 3
    assert run.aws.fired("dynamodb") == 5


def test_dynamodb_throttles_the_claim_on_the_last_receive(chaos) -> None:
    run = chaos(standard(), name="DynamoDB throttles the claim on the last receive", family=FAMILY)
    victim = media_id(2)
    claims: list[int] = []

    def claim_after_two_receives(params: dict[str, Any]) -> bool:
        """The victim's claims (the only UpdateItem asking for ALL_NEW): two go through, then none does."""
        if victim not in json.dumps(params.get("Key")) or params.get("ReturnValues") != "ALL_NEW":
            return False
        claims.append(1)
        return len(claims) > 2

    code = "ProvisionedThroughputExceededException"
    run.aws.fail("dynamodb", "UpdateItem", code, status=400, count=None, match=claim_after_two_receives)
    # Two receives fail on the source, so the third one, whose claim is throttled, is the last.
    run.night(after_listing=lambda p: p.simulator.faults.cut_connection(64 * 1024, count=None, media_id=victim))
    outcome = run.verify()  # FAILED with its reason, and its message in the DLQ: the two agree
    assert (outcome.completed, outcome.failed) == (2, 1)
    assert "ProvisionedThroughputExceeded" in (run.app.state.media.get("gopro", victim).last_error or "")


def test_dynamodb_throttles_the_failed_write_on_the_last_receive(chaos) -> None:
    run = chaos(standard(), name="DynamoDB throttles the FAILED write on the last receive", family=FAMILY)
    victim = media_id(2)

    def records_failed(params: dict[str, Any]) -> bool:
        return victim in json.dumps(params.get("Key")) and _sets_status("FAILED")(params)

    code = "ProvisionedThroughputExceededException"
    run.aws.fail("dynamodb", "UpdateItem", code, status=400, count=2, match=records_failed)
    run.night(after_listing=lambda p: p.simulator.faults.cut_connection(64 * 1024, count=None, media_id=victim))
    outcome = run.verify()
    assert (outcome.completed, outcome.failed) == (2, 1)
    assert run.aws.fired("dynamodb") == 2


def test_dynamodb_throttles_the_run_counters(chaos) -> None:
    run = chaos(standard(), name="DynamoDB throttles the run counters", family=FAMILY)
    code = "ProvisionedThroughputExceededException"
    run.aws.fail("dynamodb", "UpdateItem", code, status=400, count=1, match=lambda p: "synced" in json.dumps(p))
    result = run.night()
    assert run.verify().completed == 3
    assert result.report["synced"] == 3, "a throttled counter must not make an archived video look unfinished"


@LONG
def test_batch_get_item_leaves_keys_unprocessed(chaos) -> None:
    run = chaos(standard(), name="BatchGetItem UnprocessedKeys", family=FAMILY)
    run.night()
    rewrites: list[int] = []

    def unprocess(parsed: dict[str, Any], params: dict[str, Any]) -> None:
        if len(rewrites) < 2:
            table, request = next(iter(params["RequestItems"].items()))
            rewrites.append(len(request["Keys"]))
            parsed["Responses"] = {table: []}
            parsed["UnprocessedKeys"] = {table: request}

    run.aws.after("dynamodb", "BatchGetItem", unprocess)
    second = run.next_night(full=True)  # a full reconcile reads every listed medium's record
    assert len(rewrites) == 2
    assert second.listing["enqueued"] == 0  # nothing read as "new" because its read was throttled
    assert run.verify().completed == 3


@LONG
def test_secrets_manager_unavailable_when_the_listing_starts(chaos) -> None:
    run = chaos(standard(), name="Secrets Manager unavailable at listing", family=FAMILY)
    run.aws.fail("secretsmanager", "GetSecretValue", "InternalServiceError", status=500, count=None)
    first = run.night()
    assert "InternalServiceError" in first.listing["error"]
    assert first.report["outcome"] == "CRITICAL"
    run.aws.clear()
    run.next_night()
    assert run.verify().completed == 3


def test_secrets_manager_unavailable_during_a_token_refresh(chaos) -> None:
    run = chaos(standard(), name="Secrets Manager unavailable mid-run", family=FAMILY)

    def expire(pipeline: Any) -> None:
        pipeline.simulator.faults.expire_access_tokens()
        # Two: even if both hit the same video, its third receive still has the secret.
        run.aws.fail("secretsmanager", "GetSecretValue", "ServiceUnavailable", status=503, count=2)

    run.night(after_listing=expire)
    assert run.verify().completed == 3
    assert run.aws.fired("secretsmanager") == 2


def _entries_of(params: dict[str, Any]) -> list[dict[str, Any]]:
    return list(params.get("Entries", []))


def test_send_message_batch_with_failed_entries(chaos) -> None:
    run = chaos(standard(), name="SendMessageBatch failed entries (retryable)", family=FAMILY)
    failed: list[str] = []

    def partial(context: dict[str, Any], **_: Any) -> Any:
        """The first call: SQS fails two entries on its side (SenderFault false). botocore does not retry the
        entries of a call that succeeded; the lister must, without losing or doubling any."""
        entries = _entries_of(api_params(context))
        if failed or len(entries) < 3:
            return None
        keep, drop = entries[:-2], entries[-2:]
        failed.extend(e["Id"] for e in drop)
        sent = _raw_sqs(run).send_message_batch(QueueUrl=run.settings.queue_url, Entries=keep)
        parsed = {
            "Successful": sent.get("Successful", []),
            "Failed": [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "chaos"} for e in drop
            ],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        return AWSResponse("https://chaos.invalid/", 200, {}, None), parsed

    run.client("sqs").meta.events.register("before-call.sqs.SendMessageBatch", partial)
    first = run.night()
    assert len(failed) == 2
    assert first.listing["enqueued"] == 3
    assert first.consumer_stats.records == 3
    assert run.verify().completed == 3


@LONG
def test_send_message_batch_refuses_an_entry_as_our_fault(chaos) -> None:
    run = chaos(standard(), name="SendMessageBatch sender-fault entry (next night)", family=FAMILY)
    victim = media_id(2)
    refused: list[str] = []

    def refuse(context: dict[str, Any], **_: Any) -> Any:
        entries = _entries_of(api_params(context))
        bad = [e for e in entries if victim in e["MessageBody"]]
        if not bad or refused:
            return None
        refused.append(victim)
        good = [e for e in entries if e not in bad]
        sent = _raw_sqs(run).send_message_batch(QueueUrl=run.settings.queue_url, Entries=good) if good else {}
        parsed = {
            "Successful": sent.get("Successful", []),
            "Failed": [
                {"Id": e["Id"], "SenderFault": True, "Code": "InvalidParameterValue", "Message": "chaos"}
                for e in bad
            ],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        return AWSResponse("https://chaos.invalid/", 200, {}, None), parsed

    run.client("sqs").meta.events.register("before-call.sqs.SendMessageBatch", refuse)
    first = run.night()
    assert first.listing["enqueued"] == 2
    assert first.report["outcome"] == "PARTIAL"  # the run says a video could not be queued
    assert "could not be enqueued" in (first.report["lister_error"] or "")
    run.next_night()  # the video was never recorded, so the next listing queues it again
    assert run.verify().completed == 3


@LONG
def test_send_message_batch_sent_but_reported_failed_duplicates_messages(chaos) -> None:
    run = chaos(standard(), name="SendMessageBatch sent but reported failed (duplicates)", family=FAMILY)
    once: list[bool] = []

    def misreport(parsed: dict[str, Any], params: dict[str, Any]) -> None:
        if once:
            return
        once.append(True)
        moved = parsed["Successful"][:2]
        parsed["Successful"] = parsed["Successful"][2:]
        parsed["Failed"] = [
            {"Id": m["Id"], "SenderFault": False, "Code": "ServiceUnavailable", "Message": "chaos"} for m in moved
        ]

    run.aws.after("sqs", "SendMessageBatch", misreport)
    first = run.night()
    assert first.consumer_stats.records == 5  # three messages and two duplicates
    assert run.verify().completed == 3


def test_sns_publish_failing_leaves_the_archive_intact(chaos) -> None:
    run = chaos(standard(), name="SNS publish failing", family=FAMILY)
    run.aws.fail("sns", "Publish", "InternalError", status=500, count=1)
    result = run.night()
    assert ["InternalError" in str(e) for e in run.summary_errors] == [True]
    assert result.drained
    assert run.verify().completed == 3


def _raw_sqs(run: Any) -> Any:
    """An SQS client without the chaos hooks (to really send what a fabricated answer reports as sent)."""
    return boto3.client("sqs", endpoint_url=run.settings.aws_endpoint_url, region_name=run.settings.aws_region)
