"""Bugs the chaos suite found in code this suite's author does not own: each is a failing test, marked
`xfail(strict=True)` with the precise cause, so it turns red (XPASS) the day the fix lands and the mark must go.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from devtools.gopro_simulator import MIB
from pipeline.credentials.lock import ThreadRefreshLock
from pipeline.credentials.model import ProviderCredentials
from pipeline.credentials.store import MemoryStore
from pipeline.credentials.tokens import TokenManager
from pipeline.providers.base import MediaType
from pipeline.providers.errors import ProviderResponseError
from pipeline.providers.gopro.parsing import parse_download, parse_search_page
from tests.chaos.library import library, video


@pytest.mark.xfail(
    strict=True,
    reason=(
        "pipeline/credentials/tokens.py: a TokenManager uses one lock owner (`self._owner`) for every thread, and "
        "both locks (DynamoRefreshLock, ThreadRefreshLock) let the same owner re-acquire; so two threads of one "
        "process (the local runtime's five consumers share one App) both refresh with the same refresh token. "
        "With rotating refresh tokens the second grant is refused (invalid_grant, an AuthError that asks for a "
        "new sign-in) and that delivery fails. Fix: an owner per thread, e.g. "
        "f'{self._owner}-{threading.get_ident()}'."
    ),
)
def test_two_threads_of_one_process_refresh_the_token_once() -> None:
    calls: list[str] = []
    clock = [1_000.0]
    store = MemoryStore(
        ProviderCredentials(
            access_token="old-access", refresh_token="rt-1", client_id="id", client_secret="secret", expires_at=0
        )
    )

    def refresher(creds: ProviderCredentials) -> ProviderCredentials:
        calls.append(str(creds.refresh_token))
        time.sleep(0.5)  # the grant's round trip: the other thread arrives meanwhile
        return ProviderCredentials(
            access_token=f"new-access-{len(calls)}",
            refresh_token=f"rt-{len(calls) + 1}",
            client_id="id",
            client_secret="secret",
            expires_at=clock[0] + 3600,
        )

    tokens = TokenManager(store, ThreadRefreshLock(), refresher, clock=lambda: clock[0], poll_seconds=0.05)
    start = threading.Barrier(2, timeout=10)

    def worker() -> None:
        start.wait()
        tokens.refresh(stale_token="old-access")

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == ["rt-1"]  # one grant; the other thread adopts its result


@pytest.mark.xfail(
    strict=True,
    reason=(
        "pipeline/providers/gopro/parsing.py `_opt_int`: `str.isdigit()` is true for non-ASCII digits such as "
        "'²' that `int()` refuses, so a listing or descriptor with such a value raises a bare ValueError instead "
        "of the typed ProviderResponseError with a snippet of the answer (the listing fails either way, but "
        "without saying which field of GoPro's answer was wrong). Fix: `value.strip().isascii()` as well."
    ),
)
@pytest.mark.parametrize("where", ["file_size", "total_pages", "item_number"])
def test_a_non_ascii_digit_string_is_refused_with_a_typed_error(where: str) -> None:
    if where == "item_number":
        link = {"url": "https://a/b", "label": "source", "item_number": "¹"}
        descriptor = {"filename": "a.mp4", "_embedded": {"variations": [link]}}
        with pytest.raises(ProviderResponseError):
            parse_download(descriptor, media_id="abc123def", media_type=MediaType.VIDEO)
        return
    medium: dict[str, Any] = {"id": "abc123def", "type": "Video"}
    pages: dict[str, Any] = {"total_pages": 1}
    (medium if where == "file_size" else pages)[where] = "²"
    page = {"_pages": pages, "_embedded": {"errors": [], "media": [medium]}}
    with pytest.raises(ProviderResponseError):
        parse_search_page(page, requested_page=1)


@pytest.mark.integration
@pytest.mark.xfail(
    strict=True,
    reason=(
        "pipeline/services/summary.py `SummaryService.report`: the report is claimed (`claim_report`) before "
        "SNS Publish; when Publish fails the claim stays, and every retry within the 15-minute stale window is "
        "refused. EventBridge's asynchronous invocation retries the summary Lambda after about 1 and 3 minutes "
        "and the drain alarm does not fire again, so one transient SNS error loses the night's report. Fix: "
        "release the claim when publishing fails (a StateStore method clearing report_claimed_at), or publish "
        "before marking, keyed by the run id."
    ),
)
def test_the_report_is_sent_when_the_summary_is_retried_after_sns_failed(chaos) -> None:
    run = chaos(library(video(1, 6 * MIB)), name="SNS publish failing, summary retried", family="AWS")
    run.aws.fail("sns", "Publish", "InternalError", status=500, count=1)
    run.night()
    assert run.summary_errors, "the first publish failed"
    retried = run.pipeline.summarise()  # Lambda's asynchronous retry of the same alarm event, a minute later
    assert retried.get("published") is True


@pytest.mark.integration
@pytest.mark.xfail(
    strict=True,
    reason=(
        "pipeline/providers/gopro/parsing.py `parse_search_page` raises for the whole page when one medium is "
        "malformed (`parse_medium`: no string 'id', 'captured_at' not a string, ...), and pipeline/services/"
        "lister.py lets that fail the whole listing: while GoPro keeps serving that one bad entry, every night "
        "is a CRITICAL FAILURE and nothing new is archived. Fix: parse media one by one, report the bad entry in "
        "ListingPage.skipped (the field exists for this) and go on with the rest of the page."
    ),
)
def test_one_malformed_medium_does_not_stop_the_rest_of_the_listing(chaos) -> None:
    run = chaos(
        library(video(1, 600 * 1024), video(2, 600 * 1024), video(3, 600 * 1024)),
        name="one malformed medium in every listing",
        family="hostile input",
    )
    run.proof = True  # the night is expected to fail today; the assertion below is the point
    run.sim.faults.malformed_listing("missing_fields", count=None)  # the first medium has no id, every night
    night = run.night()
    assert not night.listing.get("error"), night.listing.get("error")
    assert night.listing["enqueued"] == 2


@pytest.mark.integration
@pytest.mark.xfail(
    strict=True,
    reason=(
        "pipeline/providers/gopro/http.py `GoProHttp.get_json` retries RateLimited and ProviderUnavailable only; "
        "a 200 whose body is cut short (not JSON) or that carries `_embedded.errors` (GoPro's own transient "
        "'internal_error') raises ProviderResponseError at once, so one such answer fails the night's listing. "
        "Fix: treat an undecodable 2xx body and embedded 5xx errors as ProviderUnavailable (retried)."
    ),
)
@pytest.mark.parametrize("kind", ["truncated_json", "embedded_errors"])
def test_a_transiently_broken_listing_answer_is_retried(chaos, kind: str) -> None:
    run = chaos(library(video(1, 600 * 1024)), name=f"listing answer broken once ({kind})", family="source")
    run.proof = True
    run.sim.faults.malformed_listing(kind, count=1)
    night = run.night()
    assert not night.listing.get("error"), night.listing.get("error")
