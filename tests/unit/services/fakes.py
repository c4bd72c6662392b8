"""In-process collaborators for unit tests of the services over `StateStore.in_memory`.

Why these and not moto: the services' own decisions (what to enqueue, when to hand over, what a failure does to
the record and the queue, when to report) are what these tests check; the AWS side is covered by the integration
and emulator suites. Each fake records what it was asked, so a test can say "nothing was sent".

Reused from `tests.chaos.fakes` where they fit: its `FakeSqs` (extended here with batches, visibility changes and
the DLQ depth) and its `FakeTransfer` (extended with scripted failures and a deadline). The provider here is new:
the chaos one has no library to list.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.config import Settings
from pipeline.deadline import Deadline
from pipeline.observability.metrics import MetricsEmitter
from pipeline.observability.tracing import Tracer
from pipeline.providers.base import (
    CloudProvider,
    DownloadPlan,
    DownloadSource,
    ListedFacts,
    ListingPage,
    MediaItem,
    MediaType,
)
from pipeline.providers.errors import InvalidMediaId, MediaNotFound
from pipeline.providers.gopro import api
from pipeline.services.downloader import Downloader
from pipeline.services.listing import ListingService
from pipeline.services.summary import SummaryService
from pipeline.sqs_delivery import SqsDelivery
from pipeline.state import StateStore
from pipeline.transfer.checkpoint import CompletedPart, MultipartCheckpoint
from pipeline.transfer.errors import DeadlineReached
from pipeline.transfer.model import TransferResult
from tests.chaos.fakes import FakeSqs, FakeTransfer

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/downloads"
DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/downloads-dlq"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:reports"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:lister"
START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


class Clock:
    """A wall clock the test moves by hand (the state store's leases and timestamps read it)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Monotonic:
    """A monotonic clock for `Deadline`s: time passes only when a test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# --- the provider ----------------------------------------------------------------------------------------------


def video(n: int, *, created: datetime | None = None, **changes: Any) -> MediaItem:
    """Video number `n` of the library, created `n` hours before START unless `created` says otherwise."""
    created = created or START - timedelta(hours=n)
    facts: dict[str, Any] = {
        "provider": api.NAME,
        "media_id": f"vid{n:06d}",
        "filename": f"GX01{n:04d}.MP4",
        "media_type": MediaType.VIDEO,
        "size": 1000 + n,
        "captured_at": created,
        "created_at": created,
        "ready": True,
    }
    facts.update(changes)
    return MediaItem(**facts)


class DictProvider(CloudProvider):
    """The provider contract (`pipeline.providers.base`) over a dict library, newest first, like GoPro's search.

    `list_error`, when set, is raised by `iter_pages` (after `fail_after_pages` pages); an id not in `library`
    resolves to MediaNotFound, as a medium deleted at the source does. Pages carry `total_pages`, so the listing
    knows its last page.
    """

    name = api.NAME

    def __init__(self, items: list[MediaItem] | None = None, *, page_size: int = 100) -> None:
        self.library: dict[str, MediaItem] = {item.media_id: item for item in items or []}
        self.page_size = page_size
        self.list_error: Exception | None = None
        self.fail_after_pages = 0
        self.pages_served: list[int] = []
        self.resolved: list[str] = []
        self.authenticated = 0

    def add(self, *items: MediaItem) -> None:
        self.library.update({item.media_id: item for item in items})

    def ensure_authenticated(self, *, min_validity_seconds: int = 0) -> None:
        self.authenticated += 1

    def iter_pages(
        self, *, start_page: int = 1, newer_than: datetime | None = None, until: datetime | None = None
    ) -> Iterator[ListingPage]:
        ordered = sorted(self.library.values(), key=lambda item: item.created_at or START, reverse=True)
        if newer_than is not None:
            ordered = [item for item in ordered if item.created_at is None or item.created_at > newer_than]
        if until is not None:
            ordered = [item for item in ordered if item.created_at is None or item.created_at <= until]
        chunks = [ordered[i : i + self.page_size] for i in range(0, len(ordered), self.page_size)] or [[]]
        for number in range(start_page, len(chunks) + 1):
            if self.list_error is not None and len(self.pages_served) >= self.fail_after_pages:
                raise self.list_error
            self.pages_served.append(number)
            yield ListingPage(page=number, total_pages=len(chunks), items=tuple(chunks[number - 1]))

    def resolve_download(
        self, media_id: str, *, media_type: MediaType = MediaType.VIDEO, listed: ListedFacts | None = None
    ) -> DownloadPlan:
        self.validate_media_id(media_id)
        self.resolved.append(media_id)
        item = self.library.get(media_id)
        if item is None:
            raise MediaNotFound(media_id)
        source = DownloadSource(
            url=f"https://cdn.example.com/{media_id}/source.mp4?sig=x",
            filename=item.filename,
            content_type="video/mp4",
            size_hint=item.size,
        )
        return DownloadPlan(media_id=media_id, filename=item.filename, files=(source,))

    def validate_media_id(self, media_id: str) -> str:
        if not isinstance(media_id, str) or not api.MEDIA_ID_PATTERN.fullmatch(media_id):
            raise InvalidMediaId(repr(media_id), "not a GoPro id")
        return media_id


# --- AWS clients -----------------------------------------------------------------------------------------------


@dataclass
class RecordingSqs(FakeSqs):
    """The chaos suite's SQS fake (`send_message` recorded) plus batches, visibility changes and a DLQ depth."""

    batches: list[dict[str, Any]] = field(default_factory=list)
    visibility: list[dict[str, Any]] = field(default_factory=list)
    dlq_depth: int = 0
    # Messages on the download queue (visible or in flight); None: every message sent is still there (a test that
    # has the downloader process them sets 0, as the event source mapping's deletes would).
    queue_depth: int | None = None
    refuse: set[str] = field(default_factory=set)  # media ids whose entries SQS refuses (our fault: no retry)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        accepted = [e for e in Entries if json.loads(e["MessageBody"])["media_id"] not in self.refuse]
        refused = [e for e in Entries if e not in accepted]
        start = sum(len(batch["Entries"]) for batch in self.batches)
        self.batches.append({"QueueUrl": QueueUrl, "Entries": accepted})
        return {
            "Successful": [
                {"Id": entry["Id"], "MessageId": f"b-{start + i}"} for i, entry in enumerate(accepted, start=1)
            ],
            "Failed": [
                {"Id": e["Id"], "SenderFault": True, "Code": "InvalidParameterValue", "Message": "refused"}
                for e in refused
            ],
        }

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.visibility.append(kwargs)

    def get_queue_attributes(self, *, QueueUrl: str, **_: Any) -> dict[str, Any]:
        if QueueUrl == DLQ_URL:
            return {"Attributes": {"ApproximateNumberOfMessages": str(self.dlq_depth)}}
        depth = len(self.queued()) if self.queue_depth is None else self.queue_depth
        return {
            "Attributes": {"ApproximateNumberOfMessages": str(depth), "ApproximateNumberOfMessagesNotVisible": "0"}
        }

    # --- what a test reads back

    def queued(self) -> list[dict[str, Any]]:
        """The download messages sent in batches, as received: one SQS-API-shaped message each."""
        return [
            {
                "MessageId": f"q-{index}",
                "ReceiptHandle": f"rh-{index}",
                "Body": entry["MessageBody"],
                "MessageAttributes": entry["MessageAttributes"],
                "Attributes": {"ApproximateReceiveCount": "1"},
            }
            for index, entry in enumerate((e for batch in self.batches for e in batch["Entries"]), start=1)
        ]

    def queued_media_ids(self) -> list[str]:
        return [json.loads(message["Body"])["media_id"] for message in self.queued()]

    def to(self, url: str) -> list[dict[str, Any]]:
        """Single messages sent to `url` (the DLQ, or the queue for a continuation)."""
        return [message for message in self.sent if message["QueueUrl"] == url]


@dataclass
class RecordingSns:
    """Records `publish`; `error` makes it fail; `during_publish` runs inside it (a second trigger racing it)."""

    published: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None
    during_publish: Callable[[], Any] | None = None

    def publish(self, **kwargs: Any) -> dict[str, str]:
        if self.error is not None:
            raise self.error
        if self.during_publish is not None:
            racing, self.during_publish = self.during_publish, None
            racing()
        self.published.append(kwargs)
        return {"MessageId": f"sns-{len(self.published)}"}


@dataclass
class RecordingLambda:
    invocations: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.invocations.append(kwargs)
        return {"StatusCode": 202}


class MetricsLog:
    """A real `MetricsEmitter` writing EMF lines to a StringIO, and what a test asks of those lines."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.emitter = MetricsEmitter("Test", {"Environment": "test"}, stream=self.stream)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def total(self, name: str) -> float:
        return sum(line.get(name, 0) for line in self.lines())


# --- the transfer seam -----------------------------------------------------------------------------------------


@dataclass
class ScriptedTransfer(FakeTransfer):
    """The chaos suite's recording transfer, plus scripted failures and the deadline.

    `failures` are raised, one per call, before anything else. A call whose deadline has passed saves a
    one-part checkpoint through `on_checkpoint` and raises DeadlineReached with it, as the engine does; `resumes`
    records the resume point each call was given.
    """

    failures: list[Exception] = field(default_factory=list)
    resumes: list[MultipartCheckpoint | None] = field(default_factory=list)

    def __call__(
        self,
        source: DownloadSource,
        *,
        key: str,
        metadata: Mapping[str, str],
        deadline: Deadline | None = None,
        resume: MultipartCheckpoint | None = None,
        on_checkpoint: Callable[[MultipartCheckpoint], None] | None = None,
        refresh_url: Callable[[], str] | None = None,
    ) -> TransferResult:
        self.resumes.append(resume)
        if self.failures:
            raise self.failures.pop(0)
        if deadline is not None and deadline.remaining_seconds() <= 0:
            checkpoint = MultipartCheckpoint(
                bucket="archive",
                key=key,
                upload_id="upload-1",
                part_size=8,
                size=source.size_hint,
                parts=(CompletedPart(number=1, etag='"p1"', crc32c=1, size=8),),
            )
            assert on_checkpoint is not None
            on_checkpoint(checkpoint)
            raise DeadlineReached(checkpoint)
        return super().__call__(source, key=key, metadata=metadata)


# --- the services, wired as `pipeline.app.App` wires them --------------------------------------------------------


def settings(**overrides: Any) -> Settings:
    return Settings().with_overrides(queue_url=QUEUE_URL, dlq_url=DLQ_URL, topic_arn=TOPIC_ARN, **overrides)


@dataclass
class Rig:
    """One set of collaborators; `listing()`, `summary()` and `downloader()` build the services over them."""

    settings: Settings = field(default_factory=settings)
    clock: Clock = field(default_factory=Clock)
    provider: DictProvider = field(default_factory=DictProvider)
    sqs: RecordingSqs = field(default_factory=RecordingSqs)
    sns: RecordingSns = field(default_factory=RecordingSns)
    lambda_client: RecordingLambda = field(default_factory=RecordingLambda)
    transfer: ScriptedTransfer = field(default_factory=ScriptedTransfer)
    metrics: MetricsLog = field(default_factory=MetricsLog)
    state: StateStore = field(init=False)

    def __post_init__(self) -> None:
        self.state = StateStore.in_memory(clock=self.clock)

    def summary(self) -> SummaryService:
        return SummaryService(
            settings=self.settings, state=self.state, sns=self.sns, sqs=self.sqs, metrics=self.metrics.emitter
        )

    def listing(self) -> ListingService:
        return ListingService(
            settings=self.settings,
            provider=self.provider,
            state=self.state,
            sqs=self.sqs,
            metrics=self.metrics.emitter,
            summary=self.summary(),
            tracer=Tracer(False, patch_libraries=False),
            lambda_client=self.lambda_client,
        )

    def downloader(self) -> Downloader:
        def provider_for(name: str) -> CloudProvider:
            if name != self.provider.name:
                from pipeline.providers.registry import UnknownProvider

                raise UnknownProvider(name)
            return self.provider

        return Downloader(
            settings=self.settings,
            provider_for=provider_for,
            state=self.state,
            sqs=self.sqs,
            transfer=self.transfer,
            metrics=self.metrics.emitter,
            sleep=lambda _s: None,
        )


def delivery(message: Mapping[str, Any], *, receive_count: int = 1, message_id: str | None = None) -> SqsDelivery:
    """`message` (as `RecordingSqs.queued` or `.sent` gives it) delivered for the `receive_count`-th time."""
    record = {
        "MessageId": message_id or message.get("MessageId", "m-1"),
        "ReceiptHandle": message.get("ReceiptHandle", "rh-1"),
        "Body": message.get("Body", message.get("MessageBody")),
        "MessageAttributes": message.get("MessageAttributes", {}),
        "Attributes": {"ApproximateReceiveCount": str(receive_count)},
    }
    return SqsDelivery.from_record(record)
