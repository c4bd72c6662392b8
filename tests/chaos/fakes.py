"""In-memory collaborators of the downloader, for property tests that feed it thousands of hostile records.

Why fakes here (the rest of the chaos suite runs the real stack): a property test needs hundreds of examples a
second, and what it checks is the downloader's own handling of its input (parse, validate, route, build keys),
not AWS. Each fake records what it was asked, so a test can say "nothing reached the transfer".
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Settings
from pipeline.observability.metrics import MetricsEmitter
from pipeline.providers.base import DownloadPlan, DownloadSource
from pipeline.providers.errors import InvalidMediaId
from pipeline.providers.gopro import api
from pipeline.services.downloader import Downloader
from pipeline.state import ClaimOutcome, ClaimResult, MediaRecord, MediaStatus, TransitionResult
from pipeline.transfer import Checksum, TransferMode, TransferResult


@dataclass
class FakeState:
    claims: list[str] = field(default_factory=list)
    completed: dict[str, str | None] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def claim(self, provider: str, media_id: str, **_: Any) -> ClaimResult:
        self.claims.append(media_id)
        record = MediaRecord(provider=provider, media_id=media_id, status=MediaStatus.IN_PROGRESS, attempts=1)
        return ClaimResult(ClaimOutcome.CLAIMED, record=record)

    def complete(self, provider: str, media_id: str, *, s3_key: str | None, **_: Any) -> TransitionResult:
        self.completed[media_id] = s3_key
        return TransitionResult(True)

    def fail(self, provider: str, media_id: str, *, error: str, **_: Any) -> TransitionResult:
        self.failed[media_id] = error
        return TransitionResult(True)

    def release(self, *args: Any, **kwargs: Any) -> TransitionResult:
        return TransitionResult(True)

    def save_checkpoint(self, *args: Any, **kwargs: Any) -> TransitionResult:
        return TransitionResult(True)

    def update(self, *args: Any, **kwargs: Any) -> bool:  # `runs.update`
        return True

    def add_content_hosts(self, *args: Any, **kwargs: Any) -> bool:  # `runs.add_content_hosts`
        return True

    # The store's shape (`state.media.claim`, `state.runs.update`): this one fake answers for both.
    @property
    def media(self) -> FakeState:
        return self

    @property
    def runs(self) -> FakeState:
        return self


@dataclass
class FakeSqs:
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send_message(self, **kwargs: Any) -> dict[str, str]:
        self.sent.append(kwargs)
        return {"MessageId": f"m-{len(self.sent)}"}

    def change_message_visibility(self, **kwargs: Any) -> None:
        return None


class FakeProvider:
    """GoPro's id rules; a download plan with one https link (or whatever `url_for` says)."""

    name = api.NAME

    def __init__(self, url_for: Callable[[str], str] | None = None) -> None:
        self._url_for = url_for or (lambda media_id: f"https://cdn.example.com/{media_id}/source.mp4?sig=x")
        self.resolved: list[str] = []

    def validate_media_id(self, media_id: str) -> str:
        if not isinstance(media_id, str) or not api.MEDIA_ID_PATTERN.fullmatch(media_id):
            raise InvalidMediaId(repr(media_id), "not a GoPro id")
        return media_id

    def resolve_download(self, media_id: str, **_: Any) -> DownloadPlan:
        self.resolved.append(media_id)
        source = DownloadSource(url=self._url_for(media_id), filename=self.filename, content_type="video/mp4")
        return DownloadPlan(media_id=media_id, filename=self.filename, files=(source,))

    filename = "GX010001.MP4"


@dataclass
class FakeTransfer:
    """Records every transfer; `check` (e.g. a DownloadPolicy's) runs on each URL as the real seam does."""

    check: Callable[[str], Any] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def existing(self, key: str, media_id: str, source: DownloadSource) -> TransferResult | None:
        if self.check is not None:
            self.check(source.url)
        return None

    def __call__(
        self, source: DownloadSource, *, key: str, metadata: Mapping[str, str], **_: Any
    ) -> TransferResult:
        if self.check is not None:
            self.check(source.url)
        self.calls.append({"url": source.url, "key": key, "metadata": dict(metadata)})
        return TransferResult(
            bucket="archive",
            key=key,
            size=1,
            checksum=Checksum("CRC32C", "AAAAAA=="),
            s3_checksum_type="FULL_OBJECT",
            parts=1,
            multipart=False,
            mode=TransferMode.SINGLE,
            etag='"e"',
            version_id=None,
            duration_s=0.01,
            time_to_first_byte_s=None,
            bytes_transferred=1,
            reused_parts=0,
            source_requests=1,
            url_refreshes=0,
        )


@dataclass
class Collaborators:
    state: FakeState
    sqs: FakeSqs
    provider: FakeProvider
    transfer: FakeTransfer
    downloader: Downloader


def downloader(
    *, provider: FakeProvider | None = None, transfer: FakeTransfer | None = None, settings: Settings | None = None
) -> Collaborators:
    state, sqs = FakeState(), FakeSqs()
    provider = provider or FakeProvider()
    transfer = transfer or FakeTransfer()
    settings = settings or Settings().with_overrides(queue_url="q", dlq_url="dlq")

    def provider_for(name: str) -> Any:
        if name != provider.name:
            from pipeline.providers.registry import UnknownProvider

            raise UnknownProvider(name)
        return provider

    built = Downloader(
        settings=settings,
        provider_for=provider_for,
        state=state,  # type: ignore[arg-type]
        sqs=sqs,
        transfer=transfer,
        metrics=MetricsEmitter("Test", {}, stream=io.StringIO()),
        sleep=lambda _s: None,
    )
    return Collaborators(state, sqs, provider, transfer, built)
