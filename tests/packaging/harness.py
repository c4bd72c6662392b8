"""Drives a night through the packaged functions, each invoked through the Lambda emulator, as AWS would invoke it.

- the lister gets the event its EventBridge Scheduler target sends (the template's `Input`);
- the downloader gets the messages the lister sent, received from the queue its event source mapping reads, as
  Lambda-shaped SQS events of the mapping's batch size; records it does not report as failed are deleted, as
  the mapping does (`ReportBatchItemFailures`);
- the summary gets the CloudWatch alarm state change that the template's EventBridge rule forwards to it.

Nothing here imports `pipeline`: the functions are reached only through their handler strings and the
environment variable names the template sets.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.lambda_rie import FunctionError, FunctionSpec, LambdaEmulator, RuntimeKit
from tests.packaging.assembly import ACCOUNT_ID, Assembly, LocalStackResources

FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
MAX_DOWNLOAD_INVOCATIONS = 30


@dataclass
class NightResult:
    listing: dict[str, Any]
    download_invocations: int
    summary: dict[str, Any]


class PackagedPipeline:
    def __init__(
        self,
        *,
        assembly: Assembly,
        kit: RuntimeKit,
        local: LocalStackResources,
        aws_endpoint_url: str,
        api_url: str,
        log_dir: Path,
        environment: str = "dev",
        simulator: Any = None,
    ) -> None:
        self.assembly = assembly
        self.simulator = simulator  # the GoPro simulator the functions talk to, for the tests' checks
        self.local = local
        self._kit = kit
        self._log_dir = log_dir
        self._environment = environment
        self._unset: dict[str, set[str]] = {}
        # Where the endpoints the functions would reach in AWS are on this machine, and the credentials Lambda
        # would take from the role. Only these are added to the template's own environment.
        self.overrides = {
            "AWS_ENDPOINT_URL": aws_endpoint_url,  # every boto3 client -> the moto server
            "GOPRO_API_URL": api_url,  # the provider's API and its auth -> the GoPro simulator
            "GOPRO_AUTH_URL": api_url,
            "SYNC_LOCAL_MODE": "true",  # media links are plain http on 127.0.0.1 (the simulator)
            **FAKE_AWS_CREDENTIALS,
        }

    # --- the functions ------------------------------------------------------------------------------------------

    def function_name(self, purpose: str) -> str:
        return f"gopro-sync-{purpose}-{self._environment}"

    def spec(self, purpose: str) -> FunctionSpec:
        """The function as the template declares it, less any variable `unset()` removed."""
        spec = self.assembly.function_spec(self.function_name(purpose), self.local)
        dropped = self._unset.get(purpose, set())
        missing = dropped - set(spec.environment)
        assert not missing, f"{spec.name}: the template sets no {', '.join(sorted(missing))}"
        return dataclasses.replace(
            spec, environment={k: v for k, v in spec.environment.items() if k not in dropped}
        )

    def unset(self, purpose: str, variable: str) -> None:
        """Runs `purpose` from now on as if the template did not set `variable` (a packaging fault)."""
        self._unset.setdefault(purpose, set()).add(variable)

    @contextmanager
    def function(self, spec: FunctionSpec) -> Iterator[LambdaEmulator]:
        emulator = LambdaEmulator(
            spec,
            self._kit,
            log_path=self._log_dir / f"{spec.name}.log",
            region=self.local.region,
            extra_environment=self.overrides,
        )
        with emulator:
            yield emulator

    # --- one night ----------------------------------------------------------------------------------------------

    def run_lister(self, spec: FunctionSpec | None = None) -> dict[str, Any]:
        spec = spec or self.spec("lister")
        event = self.assembly.schedule_input(self.assembly.function_id(spec.name))
        with self.function(spec) as lister:
            return lister.invoke_ok(event)

    def run_downloads(self, spec: FunctionSpec | None = None) -> tuple[int, list[str]]:
        """Invokes the downloader until its queue is empty; answers (invocations, ids of records it failed)."""
        spec = spec or self.spec("downloader")
        mapping = self.assembly.event_source(self.assembly.function_id(spec.name))
        queue_arn = self.local.resolve(mapping["EventSourceArn"], where="event source")
        queue_url = next(r.ref for r in self.local.created.values() if r.attributes.get("Arn") == queue_arn)
        partial = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
        sqs = self.local.clients("sqs")
        invocations, failed = 0, []
        with self.function(spec) as downloader:
            while invocations < MAX_DOWNLOAD_INVOCATIONS:
                messages = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=min(10, int(mapping.get("BatchSize", 10))),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=1,
                ).get("Messages", [])
                if not messages:
                    break
                answer = downloader.invoke_ok(sqs_event(messages, queue_arn, self.local.region))
                invocations += 1
                # Without ReportBatchItemFailures the mapping ignores the answer: only an error fails the batch.
                reported = (answer or {}).get("batchItemFailures", []) if partial else []
                failures = {item["itemIdentifier"] for item in reported}
                failed += sorted(failures)
                for message in messages:
                    if message["MessageId"] not in failures:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                if failures:
                    break  # a failed record waits for its visibility timeout in AWS; the test stops here
        return invocations, failed

    def run_summary(self, spec: FunctionSpec | None = None) -> dict[str, Any]:
        spec = spec or self.spec("summary")
        with self.function(spec) as summary:
            return summary.invoke_ok(self.alarm_event(self.assembly.function_id(spec.name)))

    def run_night(self) -> NightResult:
        """Lister, downloads, summary; FunctionError when one answers Lambda's error shape or the downloader
        reports failed records (the partial batch response is how an SQS-driven function fails)."""
        listing = self.run_lister()
        invocations, failed = self.run_downloads()
        if failed:
            name = self.function_name("downloader")
            raise FunctionError(name, "batchItemFailures", ", ".join(failed), self.log_tail(name))
        return NightResult(listing, invocations, self.run_summary())

    def run_and_check_night(self) -> NightResult:
        night = self.run_night()
        self.check_archive()
        return night

    def log_tail(self, function_name: str, lines: int = 40) -> str:
        path = self._log_dir / f"{function_name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def archive(self) -> dict[str, bytes]:
        """key -> bytes of every object in the archive bucket the downloader writes to."""
        # moto stores CRC32 where the upload asked for CRC32C (shared/emulators.md): read without validating it.
        s3 = self.local.clients("s3", response_checksum_validation="when_required")
        bucket = self.assembly.function_spec(self.function_name("downloader"), self.local).environment[
            "BUCKET_NAME"
        ]
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        # The media's own objects; each medium's metadata sidecar (`_media.json`) is checked apart.
        self.sidecars = [key for key in keys if key.endswith("/_media.json")]
        media = [key for key in keys if key not in self.sidecars]
        return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in media}

    def check_archive(self) -> dict[str, bytes]:
        """Every medium of the simulator's library archived once, whole (size and SHA-256); AssertionError else."""
        archive = self.archive()
        for medium in self.simulator.library:
            keys = [key for key in archive if f"/{medium.id}/" in key]
            assert len(keys) == 1, f"{medium.id} not archived once: {sorted(archive)}"
            body = archive[keys[0]]
            assert len(body) == self.simulator.source_size(medium.id), keys[0]
            assert hashlib.sha256(body).hexdigest() == self.simulator.source_sha256(medium.id), keys[0]
        assert len(archive) == len(self.simulator.library), sorted(archive)
        assert len(self.sidecars) == len(self.simulator.library), self.sidecars  # one sidecar per medium
        return archive

    def alarm_event(self, function_id: str) -> dict[str, Any]:
        """The alarm state change the EventBridge rule targeting `function_id` matches, built from its pattern."""
        for rule in self.assembly.of_type("AWS::Events::Rule").values():
            props = rule["Properties"]
            if any(t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} for t in props.get("Targets", [])):
                pattern = props["EventPattern"]
                alarm_id = pattern["resources"][0]["Fn::GetAtt"][0]
                alarm = self.assembly.resources[alarm_id]["Properties"]
                return {
                    "version": "0",
                    "id": "00000000-0000-0000-0000-000000000000",
                    "detail-type": pattern["detail-type"][0],
                    "source": pattern["source"][0],
                    "account": ACCOUNT_ID,
                    "region": self.local.region,
                    "resources": [
                        f"arn:aws:cloudwatch:{self.local.region}:{ACCOUNT_ID}:alarm:{alarm['AlarmName']}"
                    ],
                    "detail": {
                        "alarmName": alarm["AlarmName"],
                        "state": {"value": pattern["detail"]["state"]["value"][0], "reason": "queue drained"},
                        "previousState": {"value": pattern["detail"]["previousState"]["value"][0]},
                    },
                }
        raise AssertionError(f"no EventBridge rule targets {function_id}")


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Received messages as the SQS event source mapping hands them to a function."""
    return {"Records": [_record(message, queue_arn, region) for message in messages]}


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            attribute["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        attributes[name] = attribute
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def secret_document(client_id: str, client_secret: str, refresh_token: str, access_token: str) -> str:
    """The credentials secret as scripts/bootstrap_credentials.py stores it (docs: the secret's JSON shape)."""
    return json.dumps(
        {
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "access_token": access_token,
        }
    )
