"""The handlers are adapters: event → typed request → the App's service → JSON. Checked with a stand-in App."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pipeline.deadline import Deadline
from pipeline.handlers import lister, rotation, summary
from pipeline.services.listing_models import BadListerEvent, ListingOutcome, ListingRequest
from pipeline.services.rotation import BadRotationEvent, RotationRequest, Step
from pipeline.services.summary import SummaryRequest


@dataclass
class FakeListing:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def run(self, request: ListingRequest, **kwargs: Any) -> ListingOutcome:
        self.calls.append({"request": request, **kwargs})
        return ListingOutcome(run_id=request.run_id or "new", next_page=None)


@dataclass
class FakeSummary:
    asked: list[str | None] = field(default_factory=list)

    def report(self, run_id: str | None) -> None:
        self.asked.append(run_id)

    def report_pending(self) -> list[object]:  # the drain alarm: every unreported run
        self.asked.append(None)
        return []


@dataclass
class FakeRotation:
    steps: list[tuple[str, str, Step]] = field(default_factory=list)

    def rotate(self, secret_id: str, token: str, step: Step) -> None:
        self.steps.append((secret_id, token, step))


class FakeSettings:
    provider = "gopro"


class FakeApp:
    settings = FakeSettings()

    def __init__(self) -> None:
        self._listing, self._summary, self._rotation = FakeListing(), FakeSummary(), FakeRotation()

    def listing(self) -> FakeListing:
        return self._listing

    def summary(self) -> FakeSummary:
        return self._summary

    def rotation(self) -> FakeRotation:
        return self._rotation


class FakeContext:
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:lister"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> FakeApp:
    fake = FakeApp()
    for module in (lister, summary, rotation):
        monkeypatch.setattr(module, "current_app", lambda: fake)
    return fake


def test_the_lister_handler_passes_one_deadline_and_its_own_arn(app: FakeApp) -> None:
    answer = lister.handler({"source": "aws.scheduler", "id": "evt-9"}, FakeContext())
    assert answer["done"] is True
    (call,) = app.listing().calls
    assert call["request"] == ListingRequest(correlation_id="evt-9")
    assert call["function_arn"] == FakeContext.invoked_function_arn
    assert isinstance(call["deadline"], Deadline)
    assert 25 < call["deadline"].remaining_seconds() <= 30


def test_the_lister_handler_without_a_lambda_context_has_no_deadline(app: FakeApp) -> None:
    lister.handler({}, None)
    assert app.listing().calls[0]["deadline"].remaining_seconds() == float("inf")


def test_the_lister_handler_refuses_a_malformed_continuation(app: FakeApp) -> None:
    with pytest.raises(BadListerEvent):
        lister.handler({"continuation": {"run_id": "x"}}, FakeContext())
    assert app.listing().calls == []


def test_the_summary_handler_ignores_other_alarm_transitions(app: FakeApp) -> None:
    event = {"source": "aws.cloudwatch", "id": "e", "detail": {"state": {"value": "OK"}}}
    assert summary.handler(event, None) == {"published": False, "reason": "not an ALARM transition"}
    assert summary.handler({"detail": {"state": {"value": "ALARM"}}}, None) == {"published": False}
    assert summary.handler({"run_id": "run-1"}, None) == {"published": False}
    assert app.summary().asked == [None, "run-1"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (None, SummaryRequest(wanted=False)),
        ({"detail": {"state": {"value": "ALARM"}}}, SummaryRequest(wanted=True)),
        (
            {"source": "aws.cloudwatch", "id": "e1", "detail": {"state": {"value": "INSUFFICIENT_DATA"}}},
            SummaryRequest(wanted=False, correlation_id="e1"),
        ),
        ({"run_id": ""}, SummaryRequest(wanted=True)),
        ({"run_id": "r", "correlation_id": "c"}, SummaryRequest(wanted=True, run_id="r", correlation_id="c")),
    ],
)
def test_summary_requests(event: Any, expected: SummaryRequest) -> None:
    assert SummaryRequest.from_event(event) == expected


def test_the_rotation_handler_runs_the_step_it_is_asked(app: FakeApp) -> None:
    event = {"SecretId": "s", "ClientRequestToken": "t", "Step": "testSecret"}
    assert rotation.handler(event, None) == {"step": "testSecret", "status": "done"}
    assert app.rotation().steps == [("s", "t", Step.TEST)]
    assert RotationRequest.from_event(event) == RotationRequest("s", "t", Step.TEST)


@pytest.mark.parametrize(
    "event",
    [None, {"SecretId": "s", "Step": "createSecret"}, {"SecretId": "s", "ClientRequestToken": "t", "Step": "x"}],
)
def test_a_malformed_rotation_event_is_refused(app: FakeApp, event: Any) -> None:
    with pytest.raises(BadRotationEvent):
        rotation.handler(event, None)
    assert app.rotation().steps == []
