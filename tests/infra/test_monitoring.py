"""Alarms (all wired to the alerts topic), the topic itself, the dashboard and the saved queries."""

from __future__ import annotations

import pytest

from pipeline import resources
from pipeline.observability.metrics import Metric
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra

DRAIN = "queue-drained"  # the summary trigger, not an alert (see infra_cdk/components/schedule.py)


def _alarms(env: Synthesized) -> dict[str, dict]:
    """Alarms by their name without the `gopro-sync-` prefix and `-<env>` suffix."""
    found = {}
    for alarm in env.resources_of("AWS::CloudWatch::Alarm").values():
        name = alarm["Properties"]["AlarmName"]
        found[name.removeprefix("gopro-sync-").removesuffix(f"-{env.environment}")] = alarm["Properties"]
    return found


def test_every_alarm_notifies_the_alerts_topic(env: Synthesized) -> None:
    topic_id, _ = env.one("AWS::SNS::Topic", TopicName=f"gopro-sync-alerts-{env.environment}")
    alarms = _alarms(env)
    assert len(alarms) > 10
    for name, props in alarms.items():
        if name == DRAIN:
            continue
        assert props["ActionsEnabled"] is True, name
        assert {"Ref": topic_id} in props["AlarmActions"], name


def _metric_alarm(props: dict) -> tuple[str, dict]:
    dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
    return props["MetricName"], dims


def test_the_seed_alarms_with_their_thresholds(env: Synthesized) -> None:
    alarms = _alarms(env)
    app_dims = {
        resources.METRIC_DIMENSION_ENVIRONMENT: env.environment,
        resources.METRIC_DIMENSION_PROVIDER: "gopro",
    }

    def check(name: str, metric: Metric, statistic: str, op: str, threshold: float, periods: int = 1) -> None:
        props = alarms[name]
        assert _metric_alarm(props) == (str(metric), app_dims), name
        assert props["Namespace"] == "GoProSync", name
        assert (props["Statistic"], props["Period"]) == (statistic, 300), name
        assert (props["ComparisonOperator"], props["Threshold"], props["EvaluationPeriods"]) == (
            op,
            threshold,
            periods,
        ), name

    check("failed-videos", Metric.VIDEOS_FAILED, "Sum", "GreaterThanThreshold", 3)
    # Issue 13: the first authentication failure alarms (the lister fails once a night at most).
    check("authentication-failures", Metric.AUTHENTICATION_FAILURES, "Sum", "GreaterThanOrEqualToThreshold", 1)
    check("low-throughput", Metric.TRANSFER_THROUGHPUT, "Average", "LessThanThreshold", 20, periods=3)
    for purpose in ("lister", "downloader", "summary", "rotation", "restore-completed"):
        errors, throttles = alarms[f"{purpose}-errors"], alarms[f"{purpose}-throttles"]
        assert (errors["MetricName"], errors["Threshold"], errors["Period"]) == ("Errors", 5, 300)
        assert (throttles["MetricName"], throttles["Threshold"], throttles["Period"]) == ("Throttles", 1, 300)
        assert errors["ComparisonOperator"] == throttles["ComparisonOperator"] == "GreaterThanThreshold"
    for name in ("dlq-not-empty", "failed-invocations"):
        props = alarms[name]
        assert props["MetricName"] == "ApproximateNumberOfMessagesVisible", name
        assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0), name


def test_api_changed_and_blocked_each_alarm_on_the_first_one(env: Synthesized) -> None:
    """Issue 11: 406/410 ("the API changed") and an HTML 403 ("blocked") each have their own alarm."""
    alarms = _alarms(env)
    app_dims = {
        resources.METRIC_DIMENSION_ENVIRONMENT: env.environment,
        resources.METRIC_DIMENSION_PROVIDER: "gopro",
    }
    topic_id, _ = env.one("AWS::SNS::Topic", TopicName=f"gopro-sync-alerts-{env.environment}")
    for name, metric in (("api-changed", Metric.API_CHANGED), ("provider-blocked", Metric.PROVIDER_BLOCKED)):
        props = alarms[name]
        assert _metric_alarm(props) == (str(metric), app_dims), name
        assert (props["Namespace"], props["Statistic"], props["Period"]) == ("GoProSync", "Sum", 300), name
        assert (props["ComparisonOperator"], props["Threshold"], props["EvaluationPeriods"]) == (
            "GreaterThanOrEqualToThreshold",
            1,
            1,
        ), name
        assert props["TreatMissingData"] == "notBreaching", name
        assert {"Ref": topic_id} in props["AlarmActions"], name


def test_the_backlog_alarms_watch_the_queue_age_and_the_expired_messages(env: Synthesized) -> None:
    """Issue 12 point 3: the oldest message waiting QUEUE_AGE_ALARM_DAYS, and the first expired message."""
    alarms = _alarms(env)
    topic_id, _ = env.one("AWS::SNS::Topic", TopicName=f"gopro-sync-alerts-{env.environment}")
    queue_id, _ = env.queue(f"gopro-sync-downloads-{env.environment}")
    aging = alarms["messages-aging"]
    assert (aging["Namespace"], aging["MetricName"], aging["Statistic"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "Maximum",
    )
    assert aging["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert (aging["ComparisonOperator"], aging["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        resources.QUEUE_AGE_ALARM_DAYS * 86_400,
    )
    assert aging["Threshold"] < resources.QUEUE_RETENTION_DAYS * 86_400  # it warns well before they expire
    expired = alarms["messages-expired"]
    app_dims = {
        resources.METRIC_DIMENSION_ENVIRONMENT: env.environment,
        resources.METRIC_DIMENSION_PROVIDER: "gopro",
    }
    assert _metric_alarm(expired) == (str(Metric.MESSAGES_EXPIRED), app_dims)
    assert str(Metric.MESSAGES_EXPIRED) == "MessagesExpired"
    assert (expired["Namespace"], expired["Statistic"], expired["Period"]) == ("GoProSync", "Sum", 300)
    assert (expired["ComparisonOperator"], expired["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    for props in (aging, expired):
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert props["TreatMissingData"] == "notBreaching"


def test_the_restore_completed_function_is_alarmed_like_the_others(env: Synthesized) -> None:
    function_id, _ = env.function("restore-completed")
    alarms = _alarms(env)
    for kind, metric in (("errors", "Errors"), ("throttles", "Throttles")):
        props = alarms[f"restore-completed-{kind}"]
        assert props["MetricName"] == metric
        assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]


def test_lister_failed_alarm_watches_errors_and_reported_failures(env: Synthesized) -> None:
    props = _alarms(env)["lister-failed"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
    assert names == {"Errors", str(Metric.LISTER_FAILURES)}
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)


def test_alerts_topic_has_the_email_subscription_from_settings(env: Synthesized) -> None:
    from infra_cdk import config_file

    topic_id, _ = env.one("AWS::SNS::Topic")
    env.assertions.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": config_file.load(env.name).alert_email,
            "TopicArn": {"Ref": topic_id},
        },
    )


def test_dashboard_and_saved_queries(env: Synthesized) -> None:
    env.one("AWS::CloudWatch::Dashboard", DashboardName=f"gopro-sync-dashboard-{env.environment}")
    queries = {
        q["Properties"]["Name"].split("/")[-1] for q in env.resources_of("AWS::Logs::QueryDefinition").values()
    }
    assert queries == {"Failed Downloads", "Average Throughput", "Slow Transfers"}


# --- the personal preset's essential alarms (issue 13) ----------------------------------------------------------

ESSENTIAL = {"authentication-failures", "dlq-not-empty", "failed-invocations", "messages-expired", "lister-silent"}


def test_personal_preset_has_exactly_the_essential_alarms_each_wired_to_the_topic(
    synthesized: dict[str, Synthesized],
) -> None:
    personal = synthesized["personal"]
    alarms = _alarms(personal)
    assert set(alarms) == ESSENTIAL | {DRAIN}
    topic_id, _ = personal.one("AWS::SNS::Topic")
    for name in ESSENTIAL:
        assert alarms[name]["ActionsEnabled"] is True, name
        assert alarms[name]["AlarmActions"] == [{"Ref": topic_id}], name
    auth = alarms["authentication-failures"]
    assert auth["MetricName"] == str(Metric.AUTHENTICATION_FAILURES)
    assert (auth["Statistic"], auth["Period"]) == ("Sum", 300)
    assert (auth["ComparisonOperator"], auth["Threshold"], auth["EvaluationPeriods"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
        1,
    )
    for name in ("dlq-not-empty", "failed-invocations"):
        props = alarms[name]
        assert props["MetricName"] == "ApproximateNumberOfMessagesVisible", name
        assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0), name
    silent = alarms["lister-silent"]
    assert (silent["MetricName"], silent["Period"], silent["ComparisonOperator"], silent["Threshold"]) == (
        "Invocations",
        86400,
        "LessThanThreshold",
        1,
    )
    assert silent["TreatMissingData"] == "breaching"


def test_rotation_failed_alarm_watches_errors_and_reported_failures(env: Synthesized) -> None:
    props = _alarms(env)["rotation-failed"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
    assert names == {"Errors", str(Metric.ROTATION_FAILURE)}
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)


def test_every_alarm_has_a_runbook_entry(synthesized: dict[str, Synthesized]) -> None:
    from pathlib import Path

    runbook = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    headings = [line for line in runbook.splitlines() if line.startswith("## `gopro-sync-")]
    # The backlog's alarms have their entries under plain headings: `messages-aging` is `### Messages aging`.
    titled = {line.removeprefix("### ").strip() for line in runbook.splitlines() if line.startswith("### ")}
    for stack in synthesized.values():
        for name in _alarms(stack):
            generic = name
            for purpose in ("lister", "downloader", "summary", "rotation", "restore-completed"):
                for kind in ("errors", "throttles"):
                    if name == f"{purpose}-{kind}":
                        generic = f"<function>-{kind}"
            if name.startswith("messages-"):
                assert name.replace("-", " ").capitalize() in titled, name
                continue
            assert any(f"`gopro-sync-{generic}-<env>`" in h for h in headings), name
