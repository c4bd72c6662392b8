"""The AWS deployment of gopro-s3-sync, in CDK (Python).

One stack per deployment (a configuration file: `config/personal.json`, see `config_file`), built from
components split by concern: `security` (KMS key, credentials secret), `storage` (state table, archive and
access-log buckets), `network` (optional VPC), `alerting` (SNS topic), `pipeline` (queues, functions, schedule,
drain detection) and `monitoring` (alarms, dashboard, saved queries). See docs/infrastructure.md for the reasons
behind each piece.

Nothing here imports the pipeline's runtime modules except `pipeline.resources`, `pipeline.config` (`EnvVar`, and
`Settings` to refuse at synthesis what the functions would refuse at start-up) and the metric names in
`pipeline.observability.metrics` (all standard-library only): synthesis must not need the runtime's dependencies.
"""
