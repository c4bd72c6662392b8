"""The DLQ alarm end to end on LocalStack, which (unlike moto) evaluates CloudWatch alarms on SQS metrics.

An empty DLQ keeps the alarm OK; one message in it takes the alarm to ALARM at its next evaluation, and the alarm
action publishes to an SNS topic whose SQS subscriber receives the notification: what the operator's e-mail
subscription gets in AWS. The alarm is the one `infra_cdk/components/monitoring.py` (`_queue_alarm`) defines
for the DLQ, with the same metric, statistic, threshold, comparison and missing-data rule, but a 60 s period
instead of the stack's so the test takes about a minute: LocalStack evaluates an alarm once per period (the
first time when it is created), and `devtools/localstack.py` has SQS publish its metrics every 5 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.localstack import SQS_METRICS_INTERVAL_S
from tests.emulators.conftest import LocalStackAws, unique

pytestmark = [pytest.mark.integration, pytest.mark.localstack, pytest.mark.slow, pytest.mark.timeout(240)]

PERIOD_S = 60
# One evaluation after the message is counted, plus the metrics interval, plus slack for a busy machine.
ALARM_WITHIN_S = PERIOD_S + SQS_METRICS_INTERVAL_S + 60


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(interval)
    return found


@pytest.fixture
def wiring(localstack_aws: LocalStackAws) -> Iterator[dict[str, Any]]:
    """A DLQ, an alarm topic with an SQS subscriber (the stand-in for the operator's inbox), and their clients."""
    sqs, sns, cloudwatch = (localstack_aws.client(s) for s in ("sqs", "sns", "cloudwatch"))
    dlq_name = unique("downloads-dlq")
    dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    topic_arn = sns.create_topic(Name=unique("alarms"))["TopicArn"]
    inbox_url = sqs.create_queue(QueueName=unique("inbox"))["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)  # not raw: the SNS envelope, as e-mail
    alarm_name = unique("dlq-not-empty")
    made = {
        "sqs": sqs,
        "cloudwatch": cloudwatch,
        "dlq_name": dlq_name,
        "dlq_url": dlq_url,
        "topic_arn": topic_arn,
        "inbox_url": inbox_url,
        "alarm_name": alarm_name,
    }
    yield made
    cloudwatch.delete_alarms(AlarmNames=[alarm_name])
    for url in (dlq_url, inbox_url):
        sqs.delete_queue(QueueUrl=url)
    sns.delete_topic(TopicArn=topic_arn)


def alarm_state(cloudwatch: Any, name: str) -> str:
    alarms = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return str(alarms[0]["StateValue"]) if alarms else ""


def test_a_message_in_the_dlq_raises_the_alarm_and_its_notification_arrives(wiring: dict[str, Any]):
    sqs, cloudwatch, name = wiring["sqs"], wiring["cloudwatch"], wiring["alarm_name"]
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription="Media failed 3 receives: see the DLQ",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": wiring["dlq_name"]}],
        Statistic="Maximum",
        Period=PERIOD_S,
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        ActionsEnabled=True,
        AlarmActions=[wiring["topic_arn"]],
    )
    # Evaluated once at creation: an empty DLQ (no datapoint, missing data not breaching) is OK.
    wait_for("the alarm's first evaluation", lambda: alarm_state(cloudwatch, name) == "OK", timeout=30)

    began = time.monotonic()
    sqs.send_message(QueueUrl=wiring["dlq_url"], MessageBody='{"media_id": "GX0100000001"}')

    wait_for("ALARM", lambda: alarm_state(cloudwatch, name) == "ALARM", timeout=ALARM_WITHIN_S, interval=2)
    took = time.monotonic() - began
    messages = wait_for(
        "the SNS notification in the subscriber's queue",
        lambda: sqs.receive_message(QueueUrl=wiring["inbox_url"], WaitTimeSeconds=1).get("Messages", []),
        timeout=30,
    )
    notification = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert notification["AlarmName"] == name
    assert (notification["OldStateValue"], notification["NewStateValue"]) == ("OK", "ALARM")
    assert notification["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert took < ALARM_WITHIN_S
