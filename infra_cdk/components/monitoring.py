"""Alarms, the dashboard and saved Logs Insights queries.

Application metrics are the pipeline's EMF metrics (`pipeline.observability.metrics.Metric`), selected by the
dimension set every emitter uses ({Environment, Provider}, `pipeline.resources`). Thresholds live in
infra_cdk/settings.py; docs/monitoring.md explains each one and docs/runbook.md says what to do.

Two tiers, because CloudWatch bills every alarm metric (0.10 USD/month) and a personal archive should pay only for
alarms that catch a failure nothing else reports:
- essential (always): authentication failures (first one), messages in the DLQ (a medium failed 3 receives),
  failed asynchronous invocations (the lister, summary or rotation crashed or timed out after its retries, or the
  scheduler could not start the lister), a download message that expired unprocessed (issue 12: a failure
  nothing else reports), and, with the schedule on, a lister that was not invoked in a day. Failed media and
  failed listings are also in the nightly report / CRITICAL e-mail.
- detailed (`monitoring.detailed_alarms`): failed videos, lister failures, low throughput, errors and throttles
  of every function (restore-completed too), "the API changed" (406/410) and "GoPro blocks this client" (an HTML
  403); earlier or more specific signals of failures the essential tier also catches (a night they stop fails its
  invocation, and its CRITICAL report names which of the two it was), rotation failures (the secret keeps its
  previous tokens, which the pipeline goes on refreshing itself; a credential that dies is the authentication
  alarm's), and the oldest download message waiting `QUEUE_AGE_ALARM_DAYS` (an early sign before an expiry).
  Why rotation moved here and the expiry alarm into the essential tier: one more essential alarm metric would put
  the personal example over its budget of 1.5x the Deep Archive storage, and the rotation alarm watches two.
The alarms are tables (`_essential_alarms`, `_detailed_alarms`: one `AlarmSpec` a row) created by one loop.
Every alarm notifies the alerts topic; the only alarm without an action is the drain detector, which is a trigger
for the summary, not an alert (see schedule.py). The dashboard is optional too (`monitoring.dashboard`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.components.function import PipelineFunction
from infra_cdk.components.pipeline import Pipeline
from infra_cdk.settings import (
    ALARM_PERIOD_MINUTES,
    AUTH_FAILURES_THRESHOLD,
    FAILED_VIDEOS_THRESHOLD,
    LAMBDA_ERRORS_THRESHOLD,
    LAMBDA_THROTTLES_THRESHOLD,
    LOW_THROUGHPUT_MBPS,
    LOW_THROUGHPUT_MINUTES,
    EnvironmentSettings,
)
from pipeline import resources
from pipeline.observability.metrics import Metric

PERIOD = Duration.minutes(ALARM_PERIOD_MINUTES)
GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
NOT_BREACHING = cloudwatch.TreatMissingData.NOT_BREACHING
BREACHING = cloudwatch.TreatMissingData.BREACHING
# Quiet nights send no report (REPORT_QUIET_NIGHTS), so a run that stopped happening (a disabled schedule, a
# deleted rule, a broken deploy) would go unnoticed: this alarm fires when the lister was not invoked in a day.
LISTER_SILENT_PERIOD = Duration.days(1)


@dataclass(frozen=True)
class AlarmSpec:
    """One row of the alarm table; `purpose` names the alarm (`gopro-sync-<purpose>-<env>`) and its runbook
    entry."""

    purpose: str
    metric: cloudwatch.IMetric
    threshold: float
    comparison: cloudwatch.ComparisonOperator
    description: str
    evaluation_periods: int = 1
    treat_missing_data: cloudwatch.TreatMissingData = NOT_BREACHING


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        pipeline: Pipeline,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._pipeline = pipeline
        self._action = actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []

        specs = self._essential_alarms() + (self._detailed_alarms() if settings.detailed_alarms else [])
        for spec in specs:
            self._alarm(spec)
        self.dashboard = self._dashboard() if settings.dashboard_enabled else None
        self._queries()

    # --- helpers -----------------------------------------------------------------------------------------------

    def metric(
        self, name: Metric, statistic: str, period: Duration = PERIOD, label: str | None = None
    ) -> cloudwatch.Metric:
        """One of the pipeline's EMF metrics for this environment."""
        return cloudwatch.Metric(
            namespace=self._settings.names.metrics_namespace,
            metric_name=str(name),
            dimensions_map={
                resources.METRIC_DIMENSION_ENVIRONMENT: self._settings.environment,
                resources.METRIC_DIMENSION_PROVIDER: self._settings.provider,
            },
            statistic=statistic,
            period=period,
            label=label,
        )

    def _alarm(self, spec: AlarmSpec) -> cloudwatch.Alarm:
        alarm = spec.metric.create_alarm(
            self,
            "".join(part.capitalize() for part in spec.purpose.split("-")) + "Alarm",
            alarm_name=self._settings.resource_name(spec.purpose),
            alarm_description=spec.description,
            threshold=spec.threshold,
            comparison_operator=spec.comparison,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.evaluation_periods,
            treat_missing_data=spec.treat_missing_data,
            actions_enabled=True,
        )
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)
        return alarm

    def _errors_and_failures(self, fn: PipelineFunction, failures: Metric, label: str) -> cloudwatch.IMetric:
        """A function's Lambda errors plus the failures it reports itself (missing = 0)."""
        return cloudwatch.MathExpression(
            expression="FILL(errors, 0) + FILL(failures, 0)",
            using_metrics={
                "errors": fn.function.metric_errors(period=PERIOD, statistic="Sum"),
                "failures": self.metric(failures, "Sum"),
            },
            period=PERIOD,
            label=label,
        )

    @staticmethod
    def _visible(queue: sqs.IQueue) -> cloudwatch.IMetric:
        return queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")

    # --- alarms: one table per tier, one loop (`__init__`) ------------------------------------------------------

    def _essential_alarms(self) -> list[AlarmSpec]:
        pipeline = self._pipeline
        specs = [
            AlarmSpec(
                "authentication-failures",
                self.metric(Metric.AUTHENTICATION_FAILURES, "Sum"),
                AUTH_FAILURES_THRESHOLD,
                GTE,
                "GoPro refused the credentials (first failure): the refresh token may be revoked; "
                "re-run scripts/bootstrap_credentials.py (docs/runbook.md)",
            ),
            AlarmSpec(
                "dlq-not-empty",
                self._visible(pipeline.dead_letter_queue),
                0,
                GT,
                "Media failed 3 receives: see the DLQ",
            ),
            AlarmSpec(
                "failed-invocations",
                self._visible(pipeline.failed_invocations),
                0,
                GT,
                "An asynchronous invocation failed all its retries",
            ),
            AlarmSpec(
                "messages-expired",
                self.metric(Metric.MESSAGES_EXPIRED, "Sum"),
                1,
                GTE,
                "Download messages expired unprocessed (first one): the lister queues those media again; "
                "see docs/runbook.md, Messages expired",
            ),
        ]
        if self._settings.schedule_enabled:
            specs.append(
                AlarmSpec(
                    "lister-silent",
                    pipeline.lister.function.metric_invocations(period=LISTER_SILENT_PERIOD, statistic="Sum"),
                    1,
                    LT,
                    "The lister was not invoked in the last day: the nightly schedule is not running "
                    "(quiet nights are silent, so this is the sign of life)",
                    treat_missing_data=BREACHING,
                )
            )
        return specs

    def _detailed_alarms(self) -> list[AlarmSpec]:
        pipeline = self._pipeline
        specs = [
            AlarmSpec(
                "failed-videos",
                self.metric(Metric.VIDEOS_FAILED, "Sum"),
                FAILED_VIDEOS_THRESHOLD,
                GT,
                f"More than {FAILED_VIDEOS_THRESHOLD} media failed within {ALARM_PERIOD_MINUTES} minutes",
            ),
            AlarmSpec(
                "low-throughput",
                self.metric(Metric.TRANSFER_THROUGHPUT, "Average"),
                LOW_THROUGHPUT_MBPS,
                LT,
                f"Average transfer throughput under {LOW_THROUGHPUT_MBPS} Mbps for {LOW_THROUGHPUT_MINUTES} min",
                evaluation_periods=LOW_THROUGHPUT_MINUTES // ALARM_PERIOD_MINUTES,
            ),
            AlarmSpec(
                "lister-failed",
                self._errors_and_failures(
                    pipeline.lister, Metric.LISTER_FAILURES, "Lister errors and reported failures"
                ),
                1,
                GTE,
                "The nightly listing failed: tonight's new media were not enqueued",
            ),
            AlarmSpec(
                "rotation-failed",
                self._errors_and_failures(
                    pipeline.rotation, Metric.ROTATION_FAILURE, "Rotation errors and reported failures"
                ),
                1,
                GTE,
                "The credentials rotation failed: the secret still holds the previous tokens",
            ),
            AlarmSpec(
                "api-changed",
                self.metric(Metric.API_CHANGED, "Sum"),
                1,
                GTE,
                "GoPro's API answered 406/410 (first one): it no longer serves the version this client speaks; "
                "update gopro-s3-sync (docs/runbook.md)",
            ),
            AlarmSpec(
                "provider-blocked",
                self.metric(Metric.PROVIDER_BLOCKED, "Sum"),
                1,
                GTE,
                "GoPro's CDN answered an HTML 403 page (first one): requests from this client are blocked; "
                "do not retry at once (docs/runbook.md)",
            ),
            # Issue 12 point 3: a backfill keeps messages waiting for days; they expire after QUEUE_RETENTION_DAYS.
            AlarmSpec(
                "messages-aging",
                pipeline.queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                resources.QUEUE_AGE_ALARM_DAYS * 86_400,
                GTE,
                f"A download message has waited {resources.QUEUE_AGE_ALARM_DAYS} days or more (messages expire "
                f"after {resources.QUEUE_RETENTION_DAYS}): downloads fall behind (see docs/runbook.md)",
            ),
        ]
        for fn in pipeline.all_functions:
            specs += [
                AlarmSpec(
                    f"{fn.purpose}-errors",
                    fn.function.metric_errors(period=PERIOD, statistic="Sum"),
                    LAMBDA_ERRORS_THRESHOLD,
                    GT,
                    f"More than {LAMBDA_ERRORS_THRESHOLD} {fn.purpose} errors within {ALARM_PERIOD_MINUTES} "
                    "minutes",
                ),
                AlarmSpec(
                    f"{fn.purpose}-throttles",
                    fn.function.metric_throttles(period=PERIOD, statistic="Sum"),
                    LAMBDA_THROTTLES_THRESHOLD,
                    GT,
                    f"More than {LAMBDA_THROTTLES_THRESHOLD} {fn.purpose} throttle within {ALARM_PERIOD_MINUTES} "
                    "minutes: the account's concurrency is exhausted",
                ),
            ]
        return specs

    # --- dashboard and queries ---------------------------------------------------------------------------------

    def _dashboard(self) -> cloudwatch.Dashboard:
        pipeline = self._pipeline
        hour = Duration.hours(1)
        synced = self.metric(Metric.VIDEOS_SYNCED, "Sum", hour, "Synced")
        failed = self.metric(Metric.VIDEOS_FAILED, "Sum", hour, "Failed")
        success_rate = cloudwatch.MathExpression(
            expression="IF(synced + failed > 0, 100 * synced / (synced + failed))",
            using_metrics={"synced": synced, "failed": failed},
            period=hour,
            label="Success rate (%)",
        )
        functions = pipeline.all_functions
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self._settings.resource_name("dashboard"),
            default_interval=Duration.days(1),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Success rate",
                left=[success_rate],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Volume",
                left=[synced, failed, self.metric(Metric.SOURCE_DELETED, "Sum", hour, "Source deleted")],
                right=[self.metric(Metric.BYTES_TRANSFERRED, "Sum", hour, "Bytes transferred")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Throughput (Mbps)",
                left=[
                    self.metric(Metric.TRANSFER_THROUGHPUT, "Average", label="Average"),
                    self.metric(Metric.TRANSFER_THROUGHPUT, "p10", label="p10 (slowest 10%)"),
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=LOW_THROUGHPUT_MBPS, label="Alarm")],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Errors",
                left=[
                    fn.function.metric_errors(period=PERIOD, statistic="Sum", label=fn.purpose) for fn in functions
                ],
                right=[
                    self.metric(Metric.VIDEOS_FAILED, "Sum", label="Media failed"),
                    self.metric(Metric.AUTHENTICATION_FAILURES, "Sum", label="Auth failures"),
                    self.metric(Metric.POISON_MESSAGES, "Sum", label="Poison messages"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Download queue",
                left=[
                    pipeline.queue.metric_approximate_number_of_messages_visible(
                        label="Waiting", period=Duration.minutes(1)
                    ),
                    pipeline.queue.metric_approximate_number_of_messages_not_visible(
                        label="In flight", period=Duration.minutes(1)
                    ),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead letters",
                left=[
                    pipeline.dead_letter_queue.metric_approximate_number_of_messages_visible(label="Download DLQ"),
                    pipeline.failed_invocations.metric_approximate_number_of_messages_visible(
                        label="Failed invocations"
                    ),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function duration (ms, max)",
                left=[
                    fn.function.metric_duration(period=PERIOD, statistic="Maximum", label=fn.purpose)
                    for fn in functions
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Transfer duration (s) and time to first byte (ms)",
                left=[
                    self.metric(Metric.TRANSFER_DURATION, "p50", label="Transfer p50"),
                    self.metric(Metric.TRANSFER_DURATION, "p90", label="Transfer p90"),
                ],
                right=[self.metric(Metric.TIME_TO_FIRST_BYTE, "p50", label="TTFB p50")],
                width=8,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=8),
        )
        return dashboard

    def _queries(self) -> None:
        settings = self._settings
        downloader_logs = [self._pipeline.downloader.log_group]
        throughput = str(Metric.TRANSFER_THROUGHPUT)
        logs.QueryDefinition(
            self,
            "FailedDownloadsQuery",
            query_definition_name=f"{settings.resource_name('queries')}/Failed Downloads",
            log_groups=downloader_logs,
            query_string=logs.QueryString(
                fields=["@timestamp", "run_id", "media_id", "level", "message"],
                filter_statements=[f'level = "ERROR" or ispresent({Metric.VIDEOS_FAILED})'],
                sort="@timestamp desc",
                limit=200,
            ),
        )
        logs.QueryDefinition(
            self,
            "AverageThroughputQuery",
            query_definition_name=f"{settings.resource_name('queries')}/Average Throughput",
            log_groups=downloader_logs,
            query_string=logs.QueryString(
                filter_statements=[f"ispresent({throughput})"],
                stats_statements=[
                    f"avg({throughput}) as avg_mbps, pct({throughput}, 10) as p10_mbps, "
                    "count(*) as transfers by bin(1h)"
                ],
            ),
        )
        logs.QueryDefinition(
            self,
            "SlowTransfersQuery",
            query_definition_name=f"{settings.resource_name('queries')}/Slow Transfers",
            log_groups=downloader_logs,
            query_string=logs.QueryString(
                fields=[
                    "@timestamp",
                    "run_id",
                    "media_id",
                    throughput,
                    str(Metric.TRANSFER_DURATION),
                    str(Metric.BYTES_TRANSFERRED),
                ],
                filter_statements=[f"ispresent({throughput})", f"{throughput} < {LOW_THROUGHPUT_MBPS}"],
                sort=f"{throughput} asc",
                limit=100,
            ),
        )
