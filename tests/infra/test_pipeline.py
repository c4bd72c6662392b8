"""The pipeline's wiring: event source, queues, functions, schedule, drain detection, failure destinations.

Literal values (5, 3, 14 days, 02:00 Europe/Paris, 1024 MB / 15 min) are the requirements of issue 4, written out
on purpose: the stack takes them from `pipeline.resources`, and a change there must fail here until reviewed.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from pipeline.config import EnvVar
from tests.infra.conftest import Synthesized, arn_of, ref

pytestmark = pytest.mark.infra

DAY = 24 * 3600


def test_downloader_consumes_the_queue_five_at_a_time_reporting_item_failures(env: Synthesized) -> None:
    queue_id, _ = env.queue(f"gopro-sync-downloads-{env.environment}")
    downloader_id, _ = env.function("downloader")
    env.assertions.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": arn_of(queue_id),
            "FunctionName": ref(downloader_id),
            "BatchSize": 1,
            "ScalingConfig": {"MaximumConcurrency": 5},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_the_queue_moves_a_message_to_the_dlq_after_three_receives(env: Synthesized) -> None:
    dlq_id, dlq = env.queue(f"gopro-sync-downloads-dlq-{env.environment}")
    env.assertions.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"gopro-sync-downloads-{env.environment}",
            "RedrivePolicy": {"deadLetterTargetArn": arn_of(dlq_id), "maxReceiveCount": 3},
        },
    )
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * DAY


def test_visibility_timeout_is_at_least_six_times_the_downloader_timeout(env: Synthesized) -> None:
    _, queue = env.queue(f"gopro-sync-downloads-{env.environment}")
    _, downloader = env.function("downloader")
    timeout = downloader["Properties"]["Timeout"]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_function_sizing_runtime_and_tracing(env: Synthesized) -> None:
    expected = {
        "lister": (512, 300),
        "downloader": (1024, 900),
        "summary": (256, 60),
        "rotation": (256, 60),
    }
    for purpose, (memory, timeout) in expected.items():
        _, fn = env.function(purpose)
        props = fn["Properties"]
        assert (props["MemorySize"], props["Timeout"]) == (memory, timeout), purpose
        assert props["Runtime"] == "python3.12", purpose
        assert props["Architectures"] == ["arm64"], purpose
        assert props["Handler"] == f"pipeline.handlers.{purpose}.handler", purpose
        assert props["TracingConfig"] == {"Mode": "Active"}, purpose
        assert len(props["Layers"]) == 1, purpose


def test_functions_get_their_settings_from_the_environment(env: Synthesized) -> None:
    table_id, _ = env.one("AWS::DynamoDB::Table")
    topic_id, _ = env.one("AWS::SNS::Topic")
    queue_id, _ = env.queue(f"gopro-sync-downloads-{env.environment}")
    dlq_id, _ = env.queue(f"gopro-sync-downloads-dlq-{env.environment}")
    bucket_id = next(lid for lid in env.resources_of("AWS::S3::Bucket") if "Archive" in lid)
    for purpose in ("lister", "downloader", "summary", "rotation"):
        _, fn = env.function(purpose)
        variables = fn["Properties"]["Environment"]["Variables"]
        assert variables[EnvVar.ENVIRONMENT] == env.environment
        assert variables[EnvVar.TABLE_NAME] == ref(table_id)
        assert variables[EnvVar.BUCKET_NAME] == ref(bucket_id)
        assert variables[EnvVar.QUEUE_URL] == ref(queue_id)
        assert variables[EnvVar.DLQ_URL] == ref(dlq_id)
        assert variables[EnvVar.TOPIC_ARN] == ref(topic_id)
        assert variables[EnvVar.CREDENTIALS_SECRET_ID] == f"gopro/credentials/{env.environment}"
        assert variables[EnvVar.METRICS_NAMESPACE] == "GoProSync"
        assert variables[EnvVar.TRACING_ENABLED] == "true"


def test_function_logs_are_kept_thirty_days(env: Synthesized) -> None:
    for purpose in ("lister", "downloader", "summary", "rotation"):
        env.assertions.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": f"/aws/lambda/gopro-sync-{purpose}-{env.environment}", "RetentionInDays": 30},
        )


def test_scheduler_starts_the_lister_at_two_in_paris_time(env: Synthesized) -> None:
    lister_id, _ = env.function("lister")
    _, schedule = env.one("AWS::Scheduler::Schedule")
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["Target"]["Arn"] == arn_of(lister_id)
    assert props["State"] == ("DISABLED" if env.environment == "dev" else "ENABLED")


def test_asynchronously_invoked_functions_have_a_failure_destination(env: Synthesized) -> None:
    failed_id, _ = env.queue(f"gopro-sync-failed-invocations-{env.environment}")
    for purpose in ("lister", "summary", "rotation", "restore-completed"):
        _, fn = env.function(purpose)
        assert fn["Properties"]["DeadLetterConfig"] == {"TargetArn": arn_of(failed_id)}, purpose
    _, schedule = env.one("AWS::Scheduler::Schedule")
    assert schedule["Properties"]["Target"]["DeadLetterConfig"] == {"Arn": arn_of(failed_id)}
    rules = env.resources_of("AWS::Events::Rule")
    assert len(rules) == 2  # the run-finished rule and the restore-completed rule
    for lid, rule in rules.items():
        assert rule["Properties"]["Targets"][0]["DeadLetterConfig"] == {"Arn": arn_of(failed_id)}, lid


def test_the_lister_is_not_retried_by_lambda(env: Synthesized) -> None:
    """A failed listing records its run as failed and sends the CRITICAL report; a Lambda retry would start a
    second run of the same night (the provider already retries GoPro's transient errors)."""
    lister_id, _ = env.function("lister")
    configs = [
        c["Properties"]
        for c in env.resources_of("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": lister_id}
    ]
    assert [c["MaximumRetryAttempts"] for c in configs] == [0]


def test_summary_starts_when_the_queue_has_drained_after_a_run(env: Synthesized) -> None:
    alarm_id, alarm = env.one("AWS::CloudWatch::Alarm", AlarmName=f"gopro-sync-queue-drained-{env.environment}")
    props = alarm["Properties"]
    expression = next(m for m in props["Metrics"] if "Expression" in m)
    assert expression["ReturnData"] is True
    used = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
    assert set(used.values()) == {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "NumberOfMessagesSent",
    }
    for metric_id in used:
        assert metric_id in expression["Expression"]
    assert props["ComparisonOperator"] == "LessThanOrEqualToThreshold"
    assert props["Threshold"] == 0

    summary_id, _ = env.function("summary")
    env.assertions.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "resources": [arn_of(alarm_id)],
                "detail": {"state": {"value": ["ALARM"]}, "previousState": {"value": ["OK"]}},
            },
            "Targets": Match.array_with([Match.object_like({"Arn": arn_of(summary_id)})]),
        },
    )
    env.assertions.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "FunctionName": arn_of(summary_id),
            "Principal": "events.amazonaws.com",
            "Action": "lambda:InvokeFunction",
        },
    )


def test_the_credentials_secret_is_rotated_every_thirty_days_by_the_rotation_function(env: Synthesized) -> None:
    secret_id, _ = env.one("AWS::SecretsManager::Secret", Name=f"gopro/credentials/{env.environment}")
    rotation_id, _ = env.function("rotation")
    env.assertions.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {
            "SecretId": ref(secret_id),
            "RotationLambdaARN": arn_of(rotation_id),
            "RotationRules": {"ScheduleExpression": "rate(30 days)"},
        },
    )


def test_scheduler_input_names_the_provider(env: Synthesized) -> None:
    _, schedule = env.one("AWS::Scheduler::Schedule")
    assert json.loads(schedule["Properties"]["Target"]["Input"])["provider"] == "gopro"


def _role_actions(env: Synthesized, purpose: str) -> dict[str, set[str]]:
    """Actions of the function's role policy, by statement Sid."""
    _, fn = env.function(purpose)
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    [policy] = [
        p for p in env.resources_of("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    by_sid: dict[str, set[str]] = {}
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        by_sid.setdefault(statement.get("Sid", ""), set()).update(actions)
    return by_sid


def test_each_role_has_what_its_function_calls(env: Synthesized) -> None:
    lister = _role_actions(env, "lister")
    assert lister["EnqueueDownloads"] == {"sqs:SendMessage"}
    assert lister["ContinueListing"] == {"lambda:InvokeFunction"}  # continuation of a long listing
    assert {"dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"} <= lister["StateTable"]
    assert lister["CredentialsSecret"] == {"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"}
    # A night that enqueues nothing is reported by the lister itself (pipeline/handlers/lister.py).
    assert lister["Notify"] == {"sns:Publish"}
    assert lister["QueueDepths"] == {"sqs:GetQueueAttributes"}

    downloader = _role_actions(env, "downloader")
    # Consuming the queue, and shortening a failed delivery's wait before its retry (services/downloader.py).
    assert "sqs:ChangeMessageVisibility" in downloader[""]
    assert downloader["ContinueOrDeadLetter"] == {"sqs:SendMessage"}
    assert {"s3:PutObject", "s3:GetObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload"} <= downloader[
        "WriteArchiveObjects"
    ]
    assert downloader["CredentialsSecret"] == {"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"}
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem"} <= downloader["StateTable"]  # the token refresh lock

    summary = _role_actions(env, "summary")
    assert summary["Notify"] == {"sns:Publish"}
    assert summary["QueueDepths"] == {"sqs:GetQueueAttributes"}
    reads_and_claims = {"dynamodb:Scan", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"}
    assert reads_and_claims <= summary["StateTable"]  # BatchGetItem: the media another run's worker held
    assert "CredentialsSecret" not in summary


def test_a_nightly_run_that_stops_happening_raises_an_alarm(env: Synthesized) -> None:
    """Quiet nights are silent, so a schedule that stopped would go unnoticed without this alarm."""
    lister_id, _ = env.function("lister")
    alarms = [
        a["Properties"]
        for a in env.resources_of("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == f"gopro-sync-lister-silent-{env.environment}"
    ]
    if env.environment == "dev":  # no schedule in dev: nothing to miss
        assert alarms == []
        return
    (alarm,) = alarms
    assert alarm["MetricName"] == "Invocations"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": lister_id}}]
    assert alarm["Period"] == 86400
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["AlarmActions"]
