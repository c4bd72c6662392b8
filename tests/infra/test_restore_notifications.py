"""The restore-completed notification in the synthesized template: the bucket sends its events to EventBridge, a
rule picks S3's "Object Restore Completed" for this bucket's media and invokes the handler, whose role can read and
count the restore ledger and publish to the alerts topic, nothing more."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synthesized


def _archive_bucket(env: Synthesized) -> tuple[str, dict[str, Any]]:
    buckets = [
        (lid, r)
        for lid, r in env.resources_of("AWS::S3::Bucket").items()
        if "NotificationConfiguration" in r["Properties"]
    ]
    assert len(buckets) == 1, [lid for lid, _ in buckets]
    return buckets[0]


def test_the_archive_bucket_sends_its_events_to_eventbridge(env: Synthesized) -> None:
    _, bucket = _archive_bucket(env)
    assert (
        bucket["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    )
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r["Id"].startswith("media-") for r in rules)  # the archive bucket, not the access-logs one


def test_a_rule_sends_restore_completed_events_of_the_bucket_to_the_handler(env: Synthesized) -> None:
    bucket_id, _ = _archive_bucket(env)
    fn_id, fn = env.function("restore-completed")
    assert fn["Properties"]["Handler"] == "pipeline.handlers.restore_completed.handler"
    rules = [
        r["Properties"]
        for r in env.resources_of("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail-type") == ["Object Restore Completed"]
    ]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["EventPattern"]["source"] == ["aws.s3"]
    assert rule["EventPattern"]["detail"]["bucket"]["name"] == [{"Ref": bucket_id}]
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"prefix": "gopro/"}]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    permissions = [
        p["Properties"]
        for p in env.resources_of("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    ]
    assert [p["Principal"] for p in permissions] == ["events.amazonaws.com"]


def test_the_handler_may_count_the_ledger_and_publish_and_nothing_else(env: Synthesized) -> None:
    _, fn = env.function("restore-completed")
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in env.resources_of("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        s.get("Sid"): sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) for s in statements
    }
    assert actions["RestoreLedger"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert actions["Notify"] == ["sns:Publish"]
    every = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a.startswith("s3:") for a in every)
    assert "dynamodb:PutItem" not in every
    assert fn["Properties"]["DeadLetterConfig"]  # a failed invocation is kept, not lost
