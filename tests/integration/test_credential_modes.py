"""The three credential modes, the night's preflight, and the API's refusals, over moto and the GoPro simulator.

Each night runs as in AWS (lister → queue → downloaders → summary, `LocalPipeline`) with the credentials the
bootstrap would store. What is checked is what a person meets: the archive, the report e-mail, the metric that
fires the alarm, and what the simulator saw (a dead credential must stop the night before any listing call).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.gopro_simulator import KB, GoProSimulator, SimMedia, SimulatorConfig
from devtools.local_runtime import LocalPipeline
from pipeline.config import Settings
from pipeline.credentials.model import CredentialsMode, ProviderCredentials
from pipeline.observability.metrics import Metric, MetricsEmitter
from pipeline.providers.gopro.auth import GoProAuth
from pipeline.providers.gopro.provider import make_session
from pipeline.retry import RetryPolicy
from pipeline.services.sidecar import SIDECAR_NAME

pytestmark = pytest.mark.integration

FAST = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "retry_max_attempts": 3}


class Night:
    """One LocalPipeline over one simulator, with its report topic and metric lines captured."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        self.pipeline = pipeline
        self.sim: GoProSimulator = pipeline.simulator
        assert pipeline.app is not None
        self.metrics_out = io.StringIO()
        app = pipeline.app
        app.__dict__["metrics"] = MetricsEmitter(app.settings.metrics_namespace, {}, stream=self.metrics_out)
        sqs, sns = pipeline.client("sqs"), pipeline.client("sns")
        self._reports = sqs.create_queue(QueueName="report-capture")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self._reports, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=pipeline.settings.topic_arn, Protocol="sqs", Endpoint=arn)

    def store(self, creds: ProviderCredentials) -> None:
        """Writes the secret as the bootstrap would (before the first run: the warm App has not read it yet)."""
        secret = self.pipeline.settings.credentials_secret_id
        self.pipeline.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=creds.to_json())

    def stored(self) -> ProviderCredentials:
        secret = self.pipeline.settings.credentials_secret_id
        text = self.pipeline.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
        return ProviderCredentials.from_json(text)

    def reports(self) -> list[dict[str, Any]]:
        sqs = self.pipeline.client("sqs")
        found = []
        while True:
            batch = sqs.receive_message(QueueUrl=self._reports, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            if not batch.get("Messages"):
                return found
            found += [json.loads(m["Body"]) for m in batch["Messages"]]

    def counted(self, metric: Metric) -> float:
        total = 0.0
        for line in self.metrics_out.getvalue().splitlines():
            document = json.loads(line)
            total += float(document.get(str(metric), 0))
        return total

    def archived(self) -> set[str]:
        s3 = self.pipeline.client("s3")
        answer = s3.list_objects_v2(Bucket=self.pipeline.settings.bucket_name)
        return {obj["Key"] for obj in answer.get("Contents", []) if not obj["Key"].endswith("/" + SIDECAR_NAME)}


@pytest.fixture
def night(aws, gopro_sim) -> Iterator[Callable[..., Night]]:
    started: list[LocalPipeline] = []

    def start(**sim_overrides: Any) -> Night:
        media = [SimMedia(id=f"cc{index:022x}", size=100 * KB) for index in range(2)]
        sim = gopro_sim(SimulatorConfig(media=media, seed=2).with_overrides(**sim_overrides))
        pipeline = LocalPipeline(
            base_settings=Settings.from_env({}),
            aws_endpoint_url=aws.endpoint_url,
            simulator=sim,
            retry_delay=0,
            settings_overrides=FAST,
        ).start()
        started.append(pipeline)
        return Night(pipeline)

    yield start
    for pipeline in started:
        pipeline.stop()


def sign_in(sim: GoProSimulator, *, remember_password: bool) -> ProviderCredentials:
    """The password grant, as `bootstrap_credentials.py --username` makes it."""
    auth = GoProAuth(auth_url=sim.base_url, session=make_session(), timeout=(2, 5), policy=RetryPolicy())
    creds = sim.credentials
    return auth.sign_in(
        username=creds.username,
        password=creds.password,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        remember_password=remember_password,
    )


def revoke(sim: GoProSimulator) -> None:
    """What GoPro does without notice: the refresh token is blacklisted and the access token dies."""
    sim.faults.blacklist_refresh_token()
    sim.faults.expire_access_tokens()


def critical_report(night: Night) -> str:
    (report,) = night.reports()
    assert "CRITICAL: the listing failed" in report["Subject"]
    return report["Message"]


# --- (a) sign-in ---------------------------------------------------------------------------------------------


def test_a_password_sign_in_archives_the_library(night) -> None:
    n = night()
    creds = sign_in(n.sim, remember_password=False)
    assert creds.mode is CredentialsMode.SIGN_IN
    assert creds.password is None
    assert [r.grant_type for r in n.sim.requests_to("token")] == ["password"]
    n.store(creds)
    result = n.pipeline.run()
    assert result.ok, result.listing
    assert len(n.archived()) == 2


def test_a_remembered_password_signs_in_again_after_gopro_revokes_the_refresh_token(night) -> None:
    n = night()
    n.store(sign_in(n.sim, remember_password=True))
    revoke(n.sim)
    n.sim.clear_requests()

    result = n.pipeline.run()

    assert result.ok, result.listing
    assert len(n.archived()) == 2
    grants = [(r.grant_type, r.status) for r in n.sim.requests_to("token")]
    assert grants == [("refresh_token", 401), ("password", 200)]
    stored = n.stored()
    assert stored.access_token == n.sim.credentials.access_token
    assert (stored.mode, stored.password) == (CredentialsMode.SIGN_IN, n.sim.credentials.password)
    assert n.counted(Metric.AUTHENTICATION_FAILURES) == 0


def test_without_a_remembered_password_a_revoked_token_stops_the_night_before_any_listing(night) -> None:
    n = night()
    n.store(sign_in(n.sim, remember_password=False))
    revoke(n.sim)
    n.sim.clear_requests()

    result = n.pipeline.run()

    assert not result.ok
    assert [r.grant_type for r in n.sim.requests_to("token")] == ["refresh_token"], "no password to sign in with"
    assert n.sim.requests_to("search") == [], "no listing work with a dead credential"
    message = critical_report(n)
    assert 'credentials mode "sign-in (username and password)"' in message
    assert (
        "Fix: python scripts/bootstrap_credentials.py --env dev --username rider@example.com --remember-password"
        in (message)
    )
    assert n.counted(Metric.AUTHENTICATION_FAILURES) == 1  # the alarm's threshold is 1
    assert n.archived() == set()


def test_the_lister_itself_sends_the_report_of_a_dead_credential(night) -> None:
    """In AWS nothing was queued, so no drain alarm starts the summary: the failed listing reports by itself."""
    n = night()
    n.store(sign_in(n.sim, remember_password=False))
    revoke(n.sim)
    outcome = n.pipeline.list()  # the lister alone: no drain, no summary invoked by the runtime
    assert "AuthError" in outcome["error"]
    assert "--remember-password" in critical_report(n)


# --- (b) refresh token ---------------------------------------------------------------------------------------


def test_a_revoked_refresh_token_names_its_mode_and_the_command(night) -> None:
    n = night()
    creds = n.sim.credentials
    n.store(
        ProviderCredentials(
            refresh_token=creds.refresh_token,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            declared_mode=CredentialsMode.REFRESH_TOKEN,
        )
    )
    assert n.pipeline.run().ok
    n.reports()  # the first night's report
    revoke(n.sim)
    n.sim.clear_requests()

    result = n.pipeline.run()

    assert not result.ok
    assert n.sim.requests_to("search") == []
    message = critical_report(n)
    assert 'credentials mode "refresh token"' in message
    assert "Fix: python scripts/bootstrap_credentials.py --env dev --refresh-token-from-stdin" in message
    assert n.counted(Metric.AUTHENTICATION_FAILURES) == 1


# --- (c) the web cookie --------------------------------------------------------------------------------------


def test_the_web_cookie_archives_one_night_and_then_asks_for_a_fresh_one(night) -> None:
    n = night()
    n.store(
        ProviderCredentials(
            access_token=n.sim.issue_access_token(),
            user_id=n.sim.credentials.user_id,
            declared_mode=CredentialsMode.WEB_COOKIE,
        )
    )
    n.sim.clear_requests()
    first = n.pipeline.run()
    assert first.ok, first.listing
    assert len(n.archived()) == 2
    assert n.sim.requests_to("token") == [], "a cookie is never refreshed"
    n.reports()  # the first night's report

    n.sim.faults.expire_access_tokens()  # the next night: the cookie has lapsed
    n.sim.clear_requests()
    second = n.pipeline.run()

    assert not second.ok
    assert n.sim.requests_to("search") == []
    message = critical_report(n)
    assert 'credentials mode "web cookie (gp_access_token)"' in message
    assert "about one night" in message
    assert "Fix: python scripts/bootstrap_credentials.py --env dev --cookie-from-stdin --user-id" in message
    assert n.counted(Metric.AUTHENTICATION_FAILURES) == 1


# --- the API's refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [406, 410])
def test_a_vendor_refusal_is_api_changed_with_its_own_metric(night, status: int) -> None:
    n = night()
    n.sim.faults.refuse_vendor_version(status, count=None)

    result = n.pipeline.run()

    assert not result.ok
    assert "ApiChanged" in result.listing["error"]
    assert f"HTTP {status}" in result.listing["error"]
    assert n.counted(Metric.API_CHANGED) == 1
    assert n.counted(Metric.AUTHENTICATION_FAILURES) == 0
    assert "the API changed" in critical_report(n)


def test_an_api_change_in_the_middle_of_the_listing_is_typed_too(night) -> None:
    n = night()
    n.sim.faults.refuse_vendor_version(410, count=None, endpoint="search")
    result = n.pipeline.run()
    assert "ApiChanged" in result.listing["error"]
    assert [r.status for r in n.sim.requests_to("search")] == [410], "never retried"
    assert n.counted(Metric.API_CHANGED) == 1


@pytest.mark.parametrize("endpoint", ["token", "user", "search"])
def test_an_html_403_from_the_api_or_token_host_is_blocked_not_an_outage_or_a_bad_token(night, endpoint) -> None:
    n = night()
    n.sim.faults.block(count=None, endpoint=endpoint)

    result = n.pipeline.run()

    assert not result.ok
    assert "Blocked" in result.listing["error"]
    assert n.counted(Metric.PROVIDER_BLOCKED) == 1
    assert n.counted(Metric.AUTHENTICATION_FAILURES) == 0
    assert len([r for r in n.sim.requests if r.fault == "blocked"]) == 1, "a block is not hammered with retries"
    assert "blocked" in critical_report(n)


def test_every_api_and_token_request_names_the_project_in_its_user_agent(night) -> None:
    n = night()
    n.store(sign_in(n.sim, remember_password=False))  # the sign-in's token request counts too
    assert n.pipeline.run().ok
    api_calls = [r for r in n.sim.requests if r.endpoint in ("token", "user", "search", "download")]
    assert {r.endpoint for r in api_calls} == {"token", "user", "search", "download"}
    for record in api_calls:
        headers = {name.lower(): value for name, value in record.headers.items()}
        assert headers.get("user-agent", "").startswith("gopro-s3-sync/"), record


def test_a_block_met_by_the_downloaders_is_metered_and_archives_nothing_wrong(night) -> None:
    n = night()
    n.sim.faults.block(count=None, endpoint="download")

    result = n.pipeline.run()

    assert result.listing.get("error") is None, "the night's preflight and listing went through"
    assert n.archived() == set()
    assert n.counted(Metric.PROVIDER_BLOCKED) >= 1
    assert n.counted(Metric.AUTHENTICATION_FAILURES) == 0
    blocked = [r for r in n.sim.requests_to("download") if r.fault == "blocked"]
    assert len(blocked) <= 2 * 3, "at most one try per delivery (3 receives of each of the 2 media)"
