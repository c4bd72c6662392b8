"""The credentials rotation over a real moto server and the GoPro simulator (which rotates refresh tokens here:
every refresh grant retires the refresh token it used, the hard case).

Secrets Manager's own driver is played by `step()`: one handler invocation per step with a version token, as the
service does after RotateSecret. Every failure test checks that AWSCURRENT was not replaced; the race tests run a
downloader's token manager in a thread next to the rotation.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.gopro_simulator import GoProSimulator
from pipeline import resources
from pipeline.app import App
from pipeline.aws_clients import clear_client_cache, make_client
from pipeline.config import EnvVar, Settings
from pipeline.credentials.factory import store_for, token_manager_for
from pipeline.credentials.model import ProviderCredentials
from pipeline.credentials.store import SecretsManagerStore
from pipeline.handlers.rotation import rotate
from pipeline.observability.metrics import Metric, MetricsEmitter
from pipeline.providers.gopro.config import GoProEnv
from pipeline.providers.gopro.provider import build
from pipeline.services.rotation import (
    AWSCURRENT,
    AWSPENDING,
    DERIVED_FROM,
    ROTATION_FIELD,
    BadRotationEvent,
    RotationError,
    Step,
)
from pipeline.state import ensure_table
from tests.fixtures.aws import MotoStack

pytestmark = pytest.mark.integration
ENV = "dev"
NAMES = resources.names_for(ENV)


@dataclass
class Rig:
    sim: GoProSimulator
    aws: MotoStack
    app: App
    metrics_out: io.StringIO
    capture_url: str

    @property
    def secrets(self) -> Any:
        return self.aws.client("secretsmanager")

    def current(self) -> tuple[ProviderCredentials, str]:
        answer = self.secrets.get_secret_value(SecretId=NAMES.credentials_secret, VersionStage=AWSCURRENT)
        return ProviderCredentials.from_json(answer["SecretString"]), answer["VersionId"]

    def stages(self) -> dict[str, list[str]]:
        return self.secrets.describe_secret(SecretId=NAMES.credentials_secret)["VersionIdsToStages"]

    def pending(self, token: str) -> dict[str, Any]:
        text = self.secrets.get_secret_value(
            SecretId=NAMES.credentials_secret, VersionId=token, VersionStage=AWSPENDING
        )["SecretString"]
        return json.loads(text)

    def metrics(self) -> list[str]:
        names = []
        for line in self.metrics_out.getvalue().splitlines():
            document = json.loads(line)
            names += [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        return names

    def notifications(self) -> list[str]:
        sqs = self.aws.client("sqs")
        found = sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get("Messages", [])
        return [m["Body"] for m in found]

    def grants(self) -> int:
        return len(self.sim.requests_to("token"))

    def lock_items(self) -> list[dict[str, Any]]:
        items = self.aws.client("dynamodb").scan(TableName=NAMES.table)["Items"]
        return [i for i in items if i[resources.TABLE_PARTITION_KEY]["S"].startswith(resources.lock_key(""))]


def step(rig: Rig, name: Step, token: str) -> dict[str, str]:
    return rotate(
        rig.app,
        {"SecretId": NAMES.credentials_secret, "ClientRequestToken": token, "Step": name.value},
    )


def rotate_fully(rig: Rig, token: str) -> None:
    for name in Step:
        step(rig, name, token)


def new_token() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def rig(gopro_sim: Any, aws: MotoStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    sim = gopro_sim(videos=1, photos=0, video_size=1000, rotate_refresh_tokens=True)
    for name in (
        GoProEnv.REFRESH_TOKEN,
        GoProEnv.ACCESS_TOKEN,
        GoProEnv.CLIENT_ID,
        GoProEnv.CLIENT_SECRET,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(EnvVar.ENVIRONMENT, ENV)
    monkeypatch.setenv(GoProEnv.API_URL, sim.base_url)
    monkeypatch.setenv(GoProEnv.AUTH_URL, sim.base_url)
    monkeypatch.setenv(EnvVar.RETRY_MAX_ATTEMPTS, "1")
    clear_client_cache()
    ensure_table(aws.client("dynamodb"), NAMES.table)
    creds = sim.credentials
    secrets = aws.client("secretsmanager")
    secrets.create_secret(
        Name=NAMES.credentials_secret,
        SecretString=ProviderCredentials(
            access_token=creds.access_token,
            refresh_token=creds.refresh_token,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            expires_at=time.time() + 3600,  # as a refresh grant leaves it
        ).to_json(),
    )
    # Turns rotation on (moto copies AWSCURRENT into a new version; no function is invoked).
    secrets.rotate_secret(
        SecretId=NAMES.credentials_secret, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
    )
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name=NAMES.topic)["TopicArn"]
    capture = sqs.create_queue(QueueName="alerts-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=capture_arn, Attributes={"RawMessageDelivery": "true"})
    monkeypatch.setenv(EnvVar.TOPIC_ARN, topic)
    app = App(Settings.from_env())
    # moto answers a GetSecretValue without a stage from its first version even after UpdateSecretVersionStage
    # moved AWSCURRENT (AWS answers AWSCURRENT); ask the pipeline's client for AWSCURRENT explicitly, as AWS means.
    make_client("secretsmanager", app.settings).meta.events.register(
        "before-parameter-build.secrets-manager.GetSecretValue", _current_unless_asked
    )
    out = io.StringIO()
    app.__dict__["metrics"] = MetricsEmitter(app.settings.metrics_namespace, {"Environment": ENV}, stream=out)
    sim.clear_requests()
    yield Rig(sim, aws, app, out, capture)
    clear_client_cache()


def _current_unless_asked(params: dict[str, Any], **_kwargs: Any) -> None:
    if "VersionId" not in params and "VersionStage" not in params:
        params["VersionStage"] = AWSCURRENT


def assert_untouched(rig: Rig, before: tuple[ProviderCredentials, str]) -> None:
    creds, version = rig.current()
    assert version == before[1]
    assert creds.to_json() == before[0].to_json()


# --- the happy path ------------------------------------------------------------------------------------------


def test_a_rotation_renews_the_refresh_token_and_promotes_it(rig: Rig) -> None:
    old, old_version = rig.current()
    token = new_token()
    rotate_fully(rig, token)
    new, version = rig.current()
    assert version == token
    assert new.refresh_token != old.refresh_token
    assert new.refresh_token == rig.sim.credentials.refresh_token  # the live one
    assert new.access_token == rig.sim.credentials.access_token
    assert rig.grants() == 1
    assert rig.stages()[token] == [AWSCURRENT]
    assert AWSPENDING not in [s for stages in rig.stages().values() for s in stages]
    assert rig.metrics() == [Metric.ROTATION_SUCCESS.value]
    assert rig.notifications() == []
    assert rig.lock_items() == []
    # The previous version is kept (AWSPREVIOUS) for a person to fall back on.
    assert "AWSPREVIOUS" in rig.stages()[old_version]


def test_every_step_is_idempotent(rig: Rig) -> None:
    token = new_token()
    for name in Step:
        step(rig, name, token)
        step(rig, name, token)
    assert rig.current()[1] == token
    assert rig.grants() == 1  # createSecret ran its refresh once
    assert rig.metrics() == [Metric.ROTATION_SUCCESS.value]


# --- a failure at each step leaves AWSCURRENT alone -----------------------------------------------------------


def test_create_fails_clearly_when_the_refresh_token_is_refused(rig: Rig) -> None:
    before = rig.current()
    rig.sim.faults.blacklist_refresh_token()
    with pytest.raises(RotationError, match=r"refused the refresh grant.*bootstrap_credentials"):
        step(rig, Step.CREATE, new_token())
    assert_untouched(rig, before)
    assert rig.metrics() == [Metric.ROTATION_FAILURE.value]
    [notice] = rig.notifications()
    assert "Credentials rotation failed (createSecret)" in notice
    assert "scripts/bootstrap_credentials.py" in notice
    assert before[0].refresh_token not in notice
    assert rig.lock_items() == []


def test_access_token_only_credentials_cannot_be_rotated(rig: Rig) -> None:
    token_only = ProviderCredentials(access_token=rig.sim.issue_access_token())
    rig.secrets.put_secret_value(SecretId=NAMES.credentials_secret, SecretString=token_only.to_json())
    before = rig.current()
    with pytest.raises(RotationError, match=r"web_cookie credentials.*cannot be rotated.*bootstrap"):
        step(rig, Step.CREATE, new_token())
    assert_untouched(rig, before)
    assert rig.grants() == 0
    assert rig.metrics() == [Metric.ROTATION_FAILURE.value]


def test_set_for_a_version_that_was_never_created_is_refused(rig: Rig) -> None:
    before = rig.current()
    with pytest.raises(RotationError, match="has no version"):
        step(rig, Step.SET, new_token())
    assert_untouched(rig, before)
    assert rig.metrics() == [Metric.ROTATION_FAILURE.value]
    assert len(rig.notifications()) == 1


def test_a_failed_test_never_promotes_and_the_next_rotation_recovers_the_live_token(rig: Rig) -> None:
    before = rig.current()
    first = new_token()
    step(rig, Step.CREATE, first)
    step(rig, Step.SET, first)
    rig.sim.faults.expire_access_tokens()  # the pending access token is refused from now on
    with pytest.raises(RotationError, match="failed the test call"):
        step(rig, Step.TEST, first)
    with pytest.raises(RotationError, match="failed the test call"):
        step(rig, Step.FINISH, first)  # even invoked on its own, finishSecret tests before promoting
    assert_untouched(rig, before)
    assert rig.lock_items() == []
    assert rig.metrics() == [Metric.ROTATION_FAILURE.value] * 2
    # AWSCURRENT's refresh token was retired by the first createSecret; the live one waits in AWSPENDING, and the
    # next rotation re-derives from it instead of asking for a new sign-in.
    second = new_token()
    rotate_fully(rig, second)
    creds, version = rig.current()
    assert version == second
    assert creds.refresh_token == rig.sim.credentials.refresh_token


def test_finish_keeps_a_newer_awscurrent_written_during_the_rotation(rig: Rig) -> None:
    token = new_token()
    step(rig, Step.CREATE, token)
    step(rig, Step.TEST, token)
    bootstrap = ProviderCredentials(access_token=rig.sim.issue_access_token(), user_id="person-signed-in-again")
    rig.secrets.put_secret_value(SecretId=NAMES.credentials_secret, SecretString=bootstrap.to_json())
    newer = rig.current()
    with pytest.raises(RotationError, match="AWSCURRENT changed during the rotation"):
        step(rig, Step.FINISH, token)
    assert_untouched(rig, newer)
    assert AWSPENDING not in rig.stages()[token]
    assert rig.lock_items() == []


def test_finish_waits_for_a_refresh_in_progress_and_retries_later(rig: Rig, monkeypatch) -> None:
    from pipeline.services import rotation

    monkeypatch.setattr(rotation, "LOCK_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(rotation, "LOCK_POLL_SECONDS", 0.05)
    token = new_token()
    step(rig, Step.CREATE, token)
    step(rig, Step.TEST, token)
    before = rig.current()
    _store, lock, _ = store_for(rig.app.settings)
    [held] = rig.lock_items()
    key = {resources.TABLE_PARTITION_KEY: held[resources.TABLE_PARTITION_KEY]}
    rig.aws.client("dynamodb").delete_item(TableName=NAMES.table, Key=key)  # the rotation's lock ran out ...
    assert lock.acquire("downloader", 60)  # ... and a downloader is refreshing
    with pytest.raises(RotationError, match="refresh lock is held"):
        step(rig, Step.FINISH, token)
    assert_untouched(rig, before)
    lock.release("downloader")
    step(rig, Step.FINISH, token)  # Secrets Manager's retry
    assert rig.current()[1] == token


# --- the race with the downloaders' refresh --------------------------------------------------------------------


def downloader(rig: Rig) -> Any:
    """A downloader's provider, with its token manager on the secret and the refresh lock (as in Lambda)."""
    return build(rig.app.settings, token_manager_for("gopro"))


def test_a_downloader_needing_a_token_mid_rotation_waits_and_adopts_the_promoted_one(rig: Rig) -> None:
    worker = downloader(rig)
    worker.ensure_authenticated()  # holds the pre-rotation token
    token = new_token()
    step(rig, Step.CREATE, token)  # GoPro has retired AWSCURRENT's refresh token now
    errors: list[BaseException] = []

    def needs_a_fresh_token() -> None:
        try:
            worker.ensure_authenticated(min_validity_seconds=10**9)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=needs_a_fresh_token)
    thread.start()
    time.sleep(0.3)
    step(rig, Step.SET, token)
    step(rig, Step.TEST, token)
    step(rig, Step.FINISH, token)
    thread.join(30)
    assert errors == []
    assert worker.tokens.credentials.access_token == rig.current()[0].access_token
    assert [r.grant_type for r in rig.sim.requests_to("token")] == ["refresh_token"]  # no refused refresh


def test_a_rotation_waits_for_a_downloaders_refresh_and_derives_from_its_token(rig: Rig) -> None:
    _store, lock, _ = store_for(rig.app.settings)
    assert lock.acquire("downloader", 60)  # a downloader is refreshing right now
    token = new_token()
    outcome: list[BaseException | None] = []

    def create() -> None:
        try:
            step(rig, Step.CREATE, token)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=create)
    thread.start()
    time.sleep(0.3)
    # The downloader's refresh: R0 -> R1, saved as AWSCURRENT, lock released.
    from pipeline.services.rotation import gopro_hooks

    store = SecretsManagerStore(rig.secrets, NAMES.credentials_secret)
    refreshed_version = store.save(gopro_hooks(rig.app.settings).refresh(store.load().credentials))
    lock.release("downloader")
    thread.join(30)
    assert outcome == [None]
    assert rig.pending(token)[ROTATION_FIELD][DERIVED_FROM] == refreshed_version
    step(rig, Step.TEST, token)
    step(rig, Step.FINISH, token)
    creds, version = rig.current()
    assert version == token
    assert creds.refresh_token == rig.sim.credentials.refresh_token
    assert rig.grants() == 2  # the downloader's and the rotation's, neither refused


# --- the adapter -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [None, {"SecretId": "x"}, {"SecretId": "x", "ClientRequestToken": "t", "Step": "rotateEverything"}],
)
def test_a_malformed_event_is_refused(rig: Rig, event: Any) -> None:
    with pytest.raises(BadRotationEvent):
        rotate(rig.app, event)


def test_rotation_must_be_enabled_on_the_secret(rig: Rig) -> None:
    rig.secrets.create_secret(Name="not-rotated", SecretString="{}")
    with pytest.raises(RotationError, match="rotation is not enabled"):
        rotate(rig.app, {"SecretId": "not-rotated", "ClientRequestToken": new_token(), "Step": "createSecret"})
    assert rig.metrics() == [Metric.ROTATION_FAILURE.value]
