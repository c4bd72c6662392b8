"""Issue 13, point 4: the packaged functions run as Lambda runs them.

Each function runs from its code asset in the synthesized dev assembly, with a layer built from requirements.txt
for this machine, under the template's Python version, handler, memory, timeout and environment, through the
Runtime Interface Emulator (devtools/lambda_rie.py). A night goes lister -> downloader -> summary over the moto
server and the GoPro simulator; the three fault tests prove the harness fails on the packaging faults that an
in-process test cannot see: a module missing from the asset, a wrong handler string, an environment variable the
code needs but the template does not set.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from devtools.lambda_rie import FunctionError, FunctionSpec, RuntimeKit
from tests.packaging.harness import PackagedPipeline

pytestmark = [pytest.mark.packaging, pytest.mark.integration]


def _subscribe_capture_queue(packaged: PackagedPipeline) -> str:
    """A queue subscribed to the alerts topic, to read the report the summary publishes."""
    sqs, sns = packaged.local.clients("sqs"), packaged.local.clients("sns")
    url = sqs.create_queue(QueueName="rie-report-capture")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = packaged.spec("summary").environment["TOPIC_ARN"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def test_a_night_through_the_packaged_functions(packaged: PackagedPipeline) -> None:
    capture = _subscribe_capture_queue(packaged)

    night = packaged.run_and_check_night()

    assert night.download_invocations == len(packaged.simulator.library)  # batch size 1: one per message
    reports = packaged.local.clients("sqs").receive_message(QueueUrl=capture, WaitTimeSeconds=2)["Messages"]
    assert len(reports) == 1
    assert json.loads(reports[0]["Body"])["Subject"]


def test_the_layer_built_here_holds_the_deployed_layer_s_distributions(
    packaged: PackagedPipeline, rie_kit: RuntimeKit
) -> None:
    """Same packages and versions as the layer asset, only for this machine's architecture."""
    (deployed,) = packaged.assembly.layer_dirs(packaged.assembly.function_id(packaged.function_name("lister")))

    def distributions(root: Path) -> set[str]:
        return {path.name for path in (root / "python").glob("*.dist-info")}

    assert distributions(deployed)
    assert distributions(rie_kit.layer_dir) == distributions(deployed)


# --- the harness catches packaging faults -----------------------------------------------------------------------

PURPOSES = ["lister", "downloader", "summary"]


def _invoke_once(packaged: PackagedPipeline, purpose: str, spec: FunctionSpec) -> None:
    if purpose == "lister":
        packaged.run_lister(spec)
    elif purpose == "downloader":
        packaged.run_lister()  # the messages to download
        packaged.run_downloads(spec)
    else:
        packaged.run_summary(spec)


def _first_imported_module(code_dir: Path, handler: str) -> Path:
    """The file of the first module of the package that the handler's module imports."""
    module = handler.rsplit(".", 1)[0]
    source = code_dir / (module.replace(".", "/") + ".py")
    top = module.split(".", 1)[0]
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(f"{top}."):
            candidate = code_dir / (node.module.replace(".", "/") + ".py")  # type: ignore[union-attr]
            if candidate.is_file():
                return candidate
    raise AssertionError(f"{source} imports no module of {top}")


@pytest.mark.parametrize("purpose", PURPOSES)
def test_a_module_missing_from_the_code_asset_fails(
    packaged: PackagedPipeline, purpose: str, tmp_path: Path
) -> None:
    spec = packaged.spec(purpose)
    asset = tmp_path / "asset"
    shutil.copytree(spec.code_dir, asset)
    missing = _first_imported_module(asset, spec.handler)
    missing.unlink()
    module = ".".join(missing.relative_to(asset).with_suffix("").parts)

    with pytest.raises(FunctionError) as caught:
        _invoke_once(packaged, purpose, dataclasses.replace(spec, code_dir=asset))

    assert caught.value.error_type == "Runtime.ImportModuleError"
    assert f"No module named '{module}'" in caught.value.error_message


@pytest.mark.parametrize(
    ("mistake", "error_type"),
    [
        (lambda handler: handler.rsplit(".", 1)[0] + ".handle", "Runtime.HandlerNotFound"),
        (lambda handler: handler.replace(".handlers.", ".handler.", 1), "Runtime.ImportModuleError"),
    ],
    ids=["wrong-function", "wrong-module"],
)
@pytest.mark.parametrize("purpose", PURPOSES)
def test_a_wrong_handler_string_fails(packaged: PackagedPipeline, purpose: str, mistake, error_type: str) -> None:
    spec = packaged.spec(purpose)

    with pytest.raises(FunctionError) as caught:
        _invoke_once(packaged, purpose, dataclasses.replace(spec, handler=mistake(spec.handler)))

    assert caught.value.error_type == error_type


@pytest.mark.parametrize(
    ("purpose", "variable", "fails_by"),
    [
        # Today the summary raises on SNS Publish (an empty TopicArn): Lambda's error shape.
        ("summary", "TOPIC_ARN", "error shape"),
        # Today every transfer fails (no such bucket): the partial batch response names each record, or, when the
        # failure is typed permanent, the record is dead-lettered at once and the archive check catches it.
        ("downloader", "BUCKET_NAME", "error shape, failed records or an empty archive"),
        # Today the lister answers but enqueues nothing (an empty QueueUrl): the archive check catches it.
        ("lister", "QUEUE_URL", "error shape or an empty archive"),
    ],
)
def test_a_variable_the_template_does_not_set_fails(
    packaged: PackagedPipeline, purpose: str, variable: str, fails_by: str
) -> None:
    """The code reads these (pipeline/config.py); without them in the template the night must not pass. A
    configuration check that refuses the missing variable at start would fail it as an error shape too."""
    packaged.unset(purpose, variable)

    with pytest.raises(AssertionError) as caught:
        packaged.run_and_check_night()

    failure = caught.value
    if fails_by == "error shape":
        assert isinstance(failure, FunctionError), failure
        assert failure.error_type != "batchItemFailures", failure
        assert not failure.error_type.startswith("HTTP"), failure  # Lambda's errorType, not a transport failure
    if isinstance(failure, FunctionError):
        assert failure.function == packaged.function_name(purpose), failure
        if failure.error_type == "batchItemFailures":
            assert "failed records" in fails_by, failure
    else:
        assert "empty archive" in fails_by, failure
        assert "not archived" in str(failure)


PROBE = """
import importlib.util, os, sys

def handler(event, context):
    return {
        "python": "%d.%d" % sys.version_info[:2],
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory_mb": int(context.memory_limit_in_mb),
        "function_name": context.function_name,
        "visible": {name: importlib.util.find_spec(name) is not None for name in event["modules"]},
        "pipeline_from": os.path.dirname(importlib.util.find_spec("pipeline").origin),
    }
"""


def test_a_function_sees_what_lambda_would_give_it_and_nothing_else(
    packaged: PackagedPipeline, tmp_path: Path
) -> None:
    """A probe handler beside the code asset: the template's runtime, timeout, memory and name reach the Lambda
    context; the asset's package and the layer are importable, the dev virtualenv's packages are not."""
    spec = packaged.spec("lister")
    asset = tmp_path / "asset"
    shutil.copytree(spec.code_dir, asset)
    (asset / "rie_probe.py").write_text(PROBE)
    probe = dataclasses.replace(spec, code_dir=asset, handler="rie_probe.handler")
    modules = [
        "boto3",
        "requests",
        "backoff",
        "awscrt",
        "pythonjsonlogger",
        "aws_xray_sdk",
        "moto",
        "pytest",
        "devtools",
    ]

    with packaged.function(probe) as function:
        seen = function.invoke_ok({"modules": modules})

    assert seen["python"] == spec.runtime.removeprefix("python")
    assert seen["memory_mb"] == spec.memory_mb
    assert seen["function_name"] == spec.name
    assert 0 < seen["remaining_ms"] <= spec.timeout_seconds * 1000
    assert Path(seen["pipeline_from"]) == asset / "pipeline"
    assert seen["visible"] == {name: name not in ("moto", "pytest", "devtools") for name in modules}


def test_a_template_setting_a_variable_lambda_reserves_fails(packaged: PackagedPipeline) -> None:
    """Lambda refuses such a function at deploy time; the harness refuses to run it."""
    spec = packaged.spec("summary")
    reserved = dataclasses.replace(spec, environment={**spec.environment, "AWS_REGION": "us-east-1"})

    with pytest.raises(ValueError, match="reserves: AWS_REGION"), packaged.function(reserved):
        pass
