"""The sidecar in the downloader (after the objects, before COMPLETED; a failure is retried, never COMPLETED) and
the writer's fallbacks, against the in-memory state store and fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline import resources
from pipeline.messages import MAX_MOMENTS, DownloadMessage, parse
from pipeline.providers.base import MediaItem, MediaType, Moment
from pipeline.providers.errors import ProviderResponseError
from pipeline.services.download_outcome import Disposition
from pipeline.services.downloader import Downloader
from pipeline.services.sidecar import (
    MAX_SIDECAR_BYTES,
    MAX_SIDECAR_MOMENTS,
    ArchivedObject,
    SidecarError,
    SidecarWriter,
    build_sidecar,
)
from pipeline.state import MediaStatus
from pipeline.transfer.model import Checksum, TransferResult
from tests.unit.services.fakes import DictProvider, Rig, delivery, video

RUN_ID = "20260301T020000Z-abcdef01"


class StubSidecars:
    def __init__(self, rig: Rig, error: Exception | None = None) -> None:
        self._rig, self._error = rig, error
        self.calls: list[dict[str, Any]] = []

    def write(self, message: DownloadMessage, provider: Any, results: Any) -> str:
        record = self._rig.state.media.get("gopro", message.media_id)
        self.calls.append(
            {"status": record.status, "results": list(results), "transfers": len(self._rig.transfer.calls)}
        )
        if self._error:
            raise self._error
        return "sidecar"


def downloader(rig: Rig, sidecars: StubSidecars) -> Downloader:
    return Downloader(
        settings=rig.settings,
        provider_for=lambda _name: rig.provider,
        state=rig.state,
        sqs=rig.sqs,
        transfer=rig.transfer,
        metrics=rig.metrics.emitter,
        sleep=lambda _s: None,
        sidecars=sidecars,  # type: ignore[arg-type]
    )


def body() -> dict[str, Any]:
    message = DownloadMessage.create(
        run_id=RUN_ID,
        correlation_id="c-1",
        provider="gopro",
        media_id="vid000001",
        filename="GX010001.MP4",
        size=1001,
    )
    return {"MessageId": "m-1", "ReceiptHandle": "rh-1", "Body": message.to_json(), "MessageAttributes": {}}


def rig() -> Rig:
    made = Rig()
    made.provider.add(video(1))
    made.state.runs.create(RUN_ID, correlation_id="c-1", started_at=made.clock(), provider="gopro")
    return made


def test_the_sidecar_is_written_after_the_objects_and_before_the_record_is_completed() -> None:
    made = rig()
    sidecars = StubSidecars(made)
    outcome = downloader(made, sidecars).process(delivery(body()))
    assert outcome.disposition is Disposition.SYNCED
    [call] = sidecars.calls
    assert call["transfers"] == 1  # the object was transferred first
    assert call["status"] is MediaStatus.IN_PROGRESS  # not yet COMPLETED
    assert len(call["results"]) == 1
    assert made.state.media.get("gopro", "vid000001").status is MediaStatus.COMPLETED


def test_a_sidecar_that_cannot_be_written_leaves_the_medium_for_a_retry_never_completed() -> None:
    made = rig()
    outcome = downloader(made, StubSidecars(made, SidecarError("object missing"))).process(delivery(body()))
    assert outcome.disposition is Disposition.RETRY
    assert made.state.media.get("gopro", "vid000001").status is MediaStatus.PENDING


def test_on_the_last_receive_a_sidecar_failure_records_the_medium_failed() -> None:
    made = rig()
    last = delivery(body(), receive_count=resources.MAX_RECEIVE_COUNT)
    outcome = downloader(made, StubSidecars(made, SidecarError("object missing"))).process(last)
    assert outcome.disposition is Disposition.FAILED
    record = made.state.media.get("gopro", "vid000001")
    assert record.status is MediaStatus.FAILED
    assert "object missing" in (record.last_error or "")


class DescribingProvider(DictProvider):
    def __init__(self, answer: MediaItem | Exception) -> None:
        super().__init__()
        self.answer = answer

    def describe(self, media_id: str) -> MediaItem:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_describe_is_skipped_for_the_default_and_a_failure_only_costs_the_richer_facts() -> None:
    writer = SidecarWriter(s3=None, bucket="b")

    class Counting(DictProvider):
        resolved = 0

        def resolve_download(self, media_id: str, **kwargs: Any) -> Any:
            Counting.resolved += 1
            return super().resolve_download(media_id, **kwargs)

    assert writer.describe(Counting(), "vid000001") is None
    assert Counting.resolved == 0  # the default describe would only resolve the download again
    assert writer.describe(DescribingProvider(RuntimeError("api down")), "vid000001") is None


def test_listing_facts_come_from_the_described_item_when_there_is_one() -> None:
    message = DownloadMessage.create(
        run_id=RUN_ID, correlation_id="c", provider="gopro", media_id="vid000001", filename="a.mp4", size=10
    )
    item = MediaItem(
        provider="gopro",
        media_id="vid000001",
        filename="GX010001.MP4",
        media_type=MediaType.TIMELAPSE_VIDEO,
        size=10,
        captured_at=None,
        created_at=None,
        ready=True,
        camera_model="HERO12 Black",
        moments_count=3,
    )
    objects = [
        ArchivedObject(key="gopro/undated/vid000001/a.mp4", size=10, crc32c="AAAAAA==", item=1, filename="a")
    ]
    document = build_sidecar(message, objects, item)
    assert document["listing"]["camera_model"] == "HERO12 Black"
    assert document["listing"]["moments_count"] == 3
    assert document["listing"]["type"] == "timelapse_video"
    assert document["listing"]["title"] is None  # not listed by this provider: null, not invented
    assert build_sidecar(message, objects, None)["listing"]["camera_model"] is None


OBJECTS = [ArchivedObject(key="gopro/undated/vid000001/a.mp4", size=10, crc32c="AAAAAA==", item=1, filename="a")]


def facts_message(**overrides: Any) -> DownloadMessage:
    listed = MediaItem(
        provider="gopro",
        media_id="vid000001",
        filename="GX010001.MP4",
        media_type=MediaType.VIDEO,
        size=10,
        captured_at=None,
        created_at=datetime(2024, 7, 15, 10, 0, tzinfo=UTC),
        ready=True,
        camera_model="HERO11 Black",
        title="Morning surf",
        duration_s=61.5,
        width=3840,
        height=2160,
        moments_count=2,
    )
    facts = {**listed.sidecar_facts(), **overrides}
    return DownloadMessage.create(
        run_id=RUN_ID, correlation_id="c", provider="gopro", media_id="vid000001", filename="a.mp4", **facts
    )


def test_the_listing_facts_travel_in_the_message_to_the_sidecar() -> None:
    message = parse(facts_message().to_json())  # through the queue's JSON and the strict parser
    listing = build_sidecar(message, OBJECTS, None)["listing"]
    assert listing["camera_model"] == "HERO11 Black"
    assert listing["title"] == "Morning surf"
    assert listing["duration_s"] == 61.5
    assert listing["resolution"] == {"width": 3840, "height": 2160}
    assert listing["moments_count"] == 2
    assert listing["uploaded_at"] == "2024-07-15T10:00:00Z"


def test_impossible_facts_are_dropped_by_create_never_refusing_the_medium() -> None:
    message = facts_message(duration_s=-3.0, width=10**9, moments_count=True, uploaded_at="yesterday", title="")
    assert (message.duration_s, message.width, message.moments_count, message.uploaded_at) == (None,) * 4
    assert message.title is None
    assert message.height == 2160  # the readable facts stay
    assert build_sidecar(message, OBJECTS, None)["listing"]["resolution"] is None


class MomentsProvider(DictProvider):
    def __init__(self, answer: tuple[Moment, ...] | Exception) -> None:
        super().__init__()
        self.answer, self.calls = answer, 0

    def moments(self, media_id: str) -> tuple[Moment, ...] | None:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_moments_are_fetched_once_when_the_listing_counted_some() -> None:
    provider = MomentsProvider((Moment("m1", 1500), Moment(None, None)))
    writer = SidecarWriter(s3=None, bucket="b")
    moments, note = writer.moments(provider, facts_message())
    assert provider.calls == 1
    assert note == ""
    document = build_sidecar(facts_message(), OBJECTS, None, moments=moments)
    assert document["listing"]["moments"] == [{"id": "m1", "time_ms": 1500}, {"id": None, "time_ms": None}]
    assert document["notes"] == []
    assert writer.moments(provider, facts_message(moments_count=0)) == (None, "")
    assert writer.moments(provider, facts_message(moments_count=None)) == (None, "")
    assert provider.calls == 1  # no count, no call


def test_a_failed_moments_call_leaves_moments_null_with_a_note_and_the_sidecar_is_still_written() -> None:
    provider = MomentsProvider(ProviderResponseError("boom", status=500, body="<secret answer>"))
    s3 = RecordingS3()
    key = SidecarWriter(s3=s3, bucket="b").write(facts_message(), provider, [result()])
    assert key == "gopro/undated/vid000001/_media.json"
    document = json.loads(s3.put["Body"])
    assert document["listing"]["moments"] is None
    assert document["listing"]["moments_count"] == 2
    [note] = document["notes"]
    assert "ProviderResponseError, HTTP 500" in note
    assert "secret" not in note


def test_the_default_provider_contract_has_no_moments() -> None:
    assert DictProvider().moments("vid000001") is None


class RecordingS3:
    def __init__(self) -> None:
        self.put: dict[str, Any] = {}

    def head_object(self, **_kwargs: Any) -> dict[str, Any]:
        return {"ContentLength": 10, "ChecksumCRC32C": "AAAAAA==", "Metadata": {}}

    def put_object(self, **kwargs: Any) -> None:
        self.put = kwargs


def result() -> TransferResult:
    return TransferResult.already_in_s3(
        bucket="b",
        key="gopro/undated/vid000001/a.mp4",
        size=10,
        checksum=Checksum(algorithm="CRC32C", value="AAAAAA=="),
        etag="e",
        version_id=None,
    )


def test_a_sidecar_over_the_size_limit_is_refused() -> None:
    message = DownloadMessage.create(
        run_id=RUN_ID, correlation_id="c", provider="gopro", media_id="vid000001", filename="a.mp4", size=10
    )
    objects = [
        ArchivedObject(
            key=f"gopro/undated/vid000001/{i:04d}.mp4", size=1, crc32c="AAAAAA==", item=i, filename="x" * 200
        )
        for i in range(400)
    ]
    with pytest.raises(SidecarError, match="over the limit"):
        SidecarWriter(s3=None, bucket="b").put(build_sidecar(message, objects, None))


def test_a_medium_with_absurdly_many_moments_still_gets_its_sidecar() -> None:
    moments = tuple(Moment(f"m{n}", n * 1000) for n in range(MAX_MOMENTS))
    document = build_sidecar(facts_message(), OBJECTS, None, moments=moments)
    assert len(document["listing"]["moments"]) == MAX_SIDECAR_MOMENTS
    assert document["notes"] == [f"moments: {MAX_MOMENTS} fetched, the first {MAX_SIDECAR_MOMENTS} kept"]
    s3 = RecordingS3()
    SidecarWriter(s3=s3, bucket="b").put(document)  # under the size limit: the delivery is not failed for it
    assert len(s3.put["Body"]) <= MAX_SIDECAR_BYTES
