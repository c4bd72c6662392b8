import pytest

from pipeline.state import RUN_COUNTERS, StateStore


def test_an_unknown_run_counter_is_refused_before_any_call() -> None:
    store = StateStore(client=None, table_name="unused")  # no call may reach a client
    with pytest.raises(ValueError, match="unknown run counters: bogus"):
        store.runs.update("run-1", bogus=1)
    with pytest.raises(ValueError, match="unknown run counters"):
        store.runs.finish_listing("run-1", synced_twice=1)


def test_the_counters_are_the_run_records_fields() -> None:
    from dataclasses import fields

    from pipeline.state import RunRecord

    assert set(RUN_COUNTERS) <= {f.name for f in fields(RunRecord)}
