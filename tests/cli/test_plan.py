"""`gopro-s3-sync plan`: a thin adapter over the pipeline's night planner (pipeline/services/night_plan.py).

The planner is written alongside this command; until it is in the tree, the adapter is checked against a stand-in
with its documented shape (`App.night_planner().plan() -> NightPlan` with `lines()` and `as_json()`), and the
contract test is skipped.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.app import App
from scripts.cli.app import main

ARGS = ["plan", "--env", "dev", "--endpoint-url", "http://127.0.0.1:9"]


class StandInPlan:
    def lines(self) -> list[str]:
        return ["tonight: 2 to queue", "skipped: 1 (not a video)"]

    def as_json(self) -> dict[str, Any]:
        return {"queue": ["a", "b"], "skipped": {"c": "not a video"}}


class StandInPlanner:
    def __init__(self) -> None:
        self.calls = 0

    def plan(self, now: Any = None) -> StandInPlan:
        self.calls += 1
        return StandInPlan()


@pytest.fixture
def planner(monkeypatch: pytest.MonkeyPatch) -> StandInPlanner:
    made = StandInPlanner()
    monkeypatch.setattr(App, "night_planner", lambda self: made, raising=False)
    for name in ("GOPRO_REFRESH_TOKEN", "GOPRO_CLIENT_ID", "GOPRO_CLIENT_SECRET", "GOPRO_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return made


def test_plan_prints_the_planners_lines(planner: StandInPlanner, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(ARGS) == 0
    assert capsys.readouterr().out.splitlines() == StandInPlan().lines()
    assert planner.calls == 1


def test_plan_json_is_the_planners_document(planner: StandInPlanner, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == StandInPlan().as_json()


def test_the_planner_has_the_shape_the_command_uses() -> None:
    from pipeline.services import night_plan

    assert hasattr(App, "night_planner")
    assert callable(night_plan.NightPlanner.plan)
    assert callable(night_plan.NightPlan.as_json)
    assert callable(night_plan.NightPlan.lines)
