from datetime import UTC, datetime

import pytest

from pipeline.deadline import Deadline
from pipeline.retry import RetryPolicy, call_with_retry, parse_retry_after


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


class Fatal(Exception):
    pass


def failing(times: int, exc: Exception, result: str = "ok"):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise exc
        return result

    return fn, calls


def test_delays_are_full_jitter_and_bounded() -> None:
    policy = RetryPolicy(max_attempts=50, base_delay=1.0, max_delay=8.0)
    delays = [d for _, d in zip(range(40), policy.delays(), strict=False)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 1  # jittered, not a constant


def test_retries_until_success_without_real_sleeping() -> None:
    slept: list[float] = []
    fn, calls = failing(2, Flaky())
    result = call_with_retry(fn, policy=RetryPolicy(max_attempts=5), retry_on=(Flaky,), sleep=slept.append)
    assert result == "ok"
    assert calls["n"] == 3
    assert len(slept) == 2


def test_gives_up_after_max_attempts_and_reraises() -> None:
    fn, calls = failing(10, Flaky())
    with pytest.raises(Flaky):
        call_with_retry(fn, policy=RetryPolicy(max_attempts=3), retry_on=(Flaky,), sleep=lambda _s: None)
    assert calls["n"] == 3


def test_other_errors_are_not_retried() -> None:
    fn, calls = failing(1, Fatal())
    with pytest.raises(Fatal):
        call_with_retry(fn, policy=RetryPolicy(max_attempts=5), retry_on=(Flaky,), sleep=lambda _s: None)
    assert calls["n"] == 1


def test_retry_after_is_a_floor_not_jittered_away() -> None:
    slept: list[float] = []
    fn, _ = failing(1, Flaky(retry_after=42.0))
    call_with_retry(
        fn,
        policy=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
        retry_on=(Flaky,),
        sleep=slept.append,
    )
    assert slept == [42.0]


def test_retry_after_beyond_the_bound_gives_up_now() -> None:
    slept: list[float] = []
    fn, calls = failing(1, Flaky(retry_after=3600.0))
    with pytest.raises(Flaky):
        call_with_retry(fn, policy=RetryPolicy(max_retry_after=300), retry_on=(Flaky,), sleep=slept.append)
    assert slept == []
    assert calls["n"] == 1


def test_deadline_stops_retries_that_would_overrun() -> None:
    fn, calls = failing(5, Flaky(retry_after=10.0))
    with pytest.raises(Flaky):
        call_with_retry(
            fn,
            policy=RetryPolicy(max_attempts=5),
            retry_on=(Flaky,),
            sleep=lambda _s: None,
            deadline=Deadline(105.0, clock=lambda: 100.0),
        )
    assert calls["n"] == 1


def test_give_up_predicate() -> None:
    fn, calls = failing(3, Flaky())
    with pytest.raises(Flaky):
        call_with_retry(
            fn, policy=RetryPolicy(), retry_on=(Flaky,), give_up=lambda _e: True, sleep=lambda _s: None
        )
    assert calls["n"] == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), (" 3 ", 3.0), ("", None), (None, None), ("soon", None), ("-5", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 25 Nov 2026 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now=now) == 0.0


def test_by_default_exactly_the_transient_errors_are_retried() -> None:
    from pipeline.errors import SyncError

    class Passing(SyncError):
        transient = True

    class Lasting(SyncError):
        pass

    fn, calls = failing(2, Passing())
    assert call_with_retry(fn, policy=RetryPolicy(max_attempts=5), sleep=lambda _s: None) == "ok"
    assert calls["n"] == 3
    for exc in (Lasting(), Fatal()):
        fn, calls = failing(2, exc)
        with pytest.raises(type(exc)):
            call_with_retry(fn, policy=RetryPolicy(max_attempts=5), sleep=lambda _s: None)
        assert calls["n"] == 1
