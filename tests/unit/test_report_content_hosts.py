"""The run report names the hosts the run's download links pointed to, and which of them a pinned
ALLOWED_DOWNLOAD_HOSTS refuses (the sign that the provider moved its content)."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.config import Settings
from pipeline.services.summary import SummaryService
from pipeline.state import StateStore

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


def _report(allowed: tuple[str, ...], hosts: set[str]) -> tuple[dict, str]:
    state = StateStore.in_memory(clock=lambda: T0)
    state.runs.create("run-1", correlation_id="c", started_at=T0, provider="gopro")
    state.runs.update("run-1", listed=2, enqueued=2, synced=2, listing_done=True)
    state.runs.add_content_hosts("run-1", hosts)
    service = SummaryService(
        settings=Settings(allowed_download_hosts=allowed), state=state, sns=None, sqs=None, metrics=None
    )  # type: ignore[arg-type]
    report = service.build(state.runs.get("run-1"), now=T0)
    return report.as_json(), report.body()


def test_unpinned_hosts_are_listed_with_how_to_pin_them() -> None:
    document, body = _report((), {"b.cdn.example", "a.cdn.example"})
    assert document["content_hosts"] == ["a.cdn.example", "b.cdn.example"]
    assert document["hosts_not_allowed"] is None
    assert "  download hosts:           a.cdn.example, b.cdn.example" in body
    assert "pin them in ALLOWED_DOWNLOAD_HOSTS" in body


def test_hosts_the_pinned_list_refuses_are_named() -> None:
    document, body = _report(("*.cdn.example",), {"a.cdn.example", "new.elsewhere.example"})
    assert document["hosts_not_allowed"] == ["new.elsewhere.example"]
    assert "not in ALLOWED_DOWNLOAD_HOSTS, so refused: new.elsewhere.example" in body
    document, body = _report(("*.cdn.example",), {"a.cdn.example"})
    assert document["hosts_not_allowed"] == []
    assert "refused" not in body
    assert "pin them" not in body


def test_a_run_without_hosts_has_no_host_lines() -> None:
    document, body = _report((), set())
    assert document["content_hosts"] == []
    assert "download hosts" not in body
