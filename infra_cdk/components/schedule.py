"""When the pipeline runs and when it reports: the nightly schedule that starts the lister, and the drain detector
that starts the summary once the download queue has drained after a run.

- EventBridge Scheduler starts the lister at the configured time and IANA time zone (02:00 Europe/Paris unless
  the configuration file says otherwise). Scheduler evaluates the cron in the time zone itself, so the run stays
  at the same local time across daylight-saving changes (an EventBridge rule's cron is UTC).
- Queue drained -> summary: see `drain_detection`.

Both are created in the `Pipeline` construct's scope, so their logical ids are those they always had.
"""

from __future__ import annotations

import json

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.components.function import PipelineFunction
from infra_cdk.settings import DRAIN_EVALUATION_MINUTES, EnvironmentSettings


def nightly_schedule(
    scope: Construct,
    *,
    settings: EnvironmentSettings,
    key: kms.IKey,
    lister: PipelineFunction,
    failed_invocations: sqs.IQueue,
) -> scheduler.CfnSchedule:
    role = iam.Role(
        scope,
        "SchedulerRole",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
        ),
        description=f"gopro-sync {settings.environment}: EventBridge Scheduler starts the lister",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="StartLister", actions=["lambda:InvokeFunction"], resources=[lister.function.function_arn]
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="DeadLetters", actions=["sqs:SendMessage"], resources=[failed_invocations.queue_arn]
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="EnvironmentKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]
        )
    )
    schedule = scheduler.CfnSchedule(
        scope,
        "NightlySchedule",
        name=settings.resource_name("nightly"),
        description=(
            f"Starts the nightly sync ({settings.schedule_expression} in {settings.schedule_timezone}, "
            "daylight saving included)"
        ),
        schedule_expression=settings.schedule_expression,
        schedule_expression_timezone=settings.schedule_timezone,
        flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        state="ENABLED" if settings.schedule_enabled else "DISABLED",
        kms_key_arn=key.key_arn,
        target=scheduler.CfnSchedule.TargetProperty(
            arn=lister.function.function_arn,
            role_arn=role.role_arn,
            input=json.dumps({"trigger": "schedule", "provider": settings.provider}),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
            ),
            dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=failed_invocations.queue_arn),
        ),
    )
    # The permissions must exist before the first invocation (the role itself is already a GetAtt dependency).
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is not None:
        schedule.node.add_dependency(policy)
    return schedule


def drain_detection(
    scope: Construct,
    *,
    settings: EnvironmentSettings,
    queue: sqs.Queue,
    summary: PipelineFunction,
    failed_invocations: sqs.IQueue,
) -> cloudwatch.Alarm:
    """An alarm that goes to ALARM when the queue has drained after a run, and a rule that starts the summary.

    busy = visible + in flight + sent (each per minute, missing = 0). While a run works, busy > 0 and the
    alarm is OK; once nothing has been waiting, in flight or sent for DRAIN_EVALUATION_MINUTES consecutive
    minutes it goes to ALARM. The rule only fires on OK -> ALARM, i.e. on a drain that follows activity
    ("visible + in flight = 0 after messages were sent"), never on the alarm's creation or on an idle day.
    Delay: the evaluation window (5 min) plus CloudWatch's SQS metric delay (1-3 min, up to ~5) plus
    EventBridge (seconds): the report arrives about 6-10 minutes after the last download ends.
    """
    period = Duration.minutes(1)
    busy = cloudwatch.MathExpression(
        expression="FILL(visible, 0) + FILL(inflight, 0) + FILL(sent, 0)",
        using_metrics={
            "visible": queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
            "inflight": queue.metric_approximate_number_of_messages_not_visible(
                period=period, statistic="Maximum"
            ),
            "sent": queue.metric_number_of_messages_sent(period=period, statistic="Sum"),
        },
        period=period,
        label="Messages waiting, in flight or sent",
    )
    alarm = busy.create_alarm(
        scope,
        "QueueDrainedAlarm",
        alarm_name=settings.resource_name("queue-drained"),
        alarm_description=(
            "Not an alert: goes to ALARM when the download queue has drained after a run; an EventBridge rule "
            "then starts the summary function. OK while a run is working."
        ),
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=DRAIN_EVALUATION_MINUTES,
        datapoints_to_alarm=DRAIN_EVALUATION_MINUTES,
        treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        actions_enabled=True,
    )
    rule = events.Rule(
        scope,
        "RunFinishedRule",
        rule_name=settings.resource_name("run-finished"),
        description="Starts the summary when the download queue has drained after a run",
        event_pattern=events.EventPattern(
            source=["aws.cloudwatch"],
            detail_type=["CloudWatch Alarm State Change"],
            resources=[alarm.alarm_arn],
            detail={"state": {"value": ["ALARM"]}, "previousState": {"value": ["OK"]}},
        ),
    )
    rule.add_target(
        targets.LambdaFunction(
            summary.function,
            dead_letter_queue=failed_invocations,
            retry_attempts=4,
            max_event_age=Duration.hours(2),
        )
    )
    return alarm
