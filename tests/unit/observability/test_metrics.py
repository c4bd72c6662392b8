import io
import json

from pipeline.observability import correlation
from pipeline.observability.metrics import Metric, MetricsEmitter, Unit


def test_emf_line_has_a_valid_aws_block_and_values() -> None:
    stream = io.StringIO()
    emitter = MetricsEmitter(
        "GoProSync", {"Environment": "dev", "Provider": "gopro"}, stream=stream, clock=lambda: 12.5
    )
    with correlation.bind(run_id="r-9", media_id="m-1"):
        emitter.emit(
            {Metric.VIDEOS_SYNCED: (1, Unit.COUNT), Metric.BYTES_TRANSFERRED: (2048, Unit.BYTES)}, filename="a.mp4"
        )
    document = json.loads(stream.getvalue())
    aws = document["_aws"]
    assert aws["Timestamp"] == 12500
    (directive,) = aws["CloudWatchMetrics"]
    assert directive["Namespace"] == "GoProSync"
    assert directive["Dimensions"] == [["Environment", "Provider"]]
    declared = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert declared == {"VideosSynced": "Count", "BytesTransferred": "Bytes"}
    # Every dimension and metric named in the directive must be a top-level member (EMF's rule).
    for name in [*directive["Dimensions"][0], *declared]:
        assert name in document
    assert document["VideosSynced"] == 1
    assert document["BytesTransferred"] == 2048
    assert document["run_id"] == "r-9"
    assert document["filename"] == "a.mp4"


def test_count_shortcut() -> None:
    stream = io.StringIO()
    MetricsEmitter("N", {"Environment": "dev"}, stream=stream).count(Metric.POISON_MESSAGES)
    document = json.loads(stream.getvalue())
    assert document["PoisonMessages"] == 1
