from pipeline.observability.tracing import Tracer


def test_disabled_tracer_is_a_no_op() -> None:
    tracer = Tracer(enabled=False)
    with tracer.subsegment("download", media_id="x"):
        tracer.annotate("correlation_id", "c")
    assert tracer.enabled is False


def test_enabled_tracer_annotates_subsegments() -> None:
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import xray_recorder

    global_sdk_config.set_sdk_enabled(True)
    tracer = Tracer(enabled=True, patch_libraries=False)
    xray_recorder.configure(sampling=False)
    segment = xray_recorder.begin_segment("test")
    try:
        with tracer.subsegment("download", media_id="m-1", correlation_id="c-1"):
            pass
        (sub,) = segment.subsegments
        assert sub.name == "download"
        assert sub.annotations == {"media_id": "m-1", "correlation_id": "c-1"}
    finally:
        xray_recorder.end_segment()
        global_sdk_config.set_sdk_enabled(False)
