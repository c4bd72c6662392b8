"""Rotation of the provider credentials secret: the Secrets Manager protocol over the provider's refresh grant.

Secrets Manager calls the rotation function four times per rotation, each time with the secret, a version token
(`ClientRequestToken`) and a step:

- **createSecret**: renew the refresh token with the provider's refresh grant and store the result as a new
  version staged AWSPENDING (version id = the token). Idempotent: if that version exists, nothing is done.
- **setSecret**: a no-op for GoPro. The step exists for services whose credentials live on *our* side too (a
  database user whose password must be changed to the new value); GoPro issues the tokens itself, so the refresh
  grant in createSecret already made them valid there, and nothing is left to set.
- **testSecret**: call the provider with the *pending* access token (the preflight call) before promotion. The
  test never refreshes: a refused token fails the step instead of quietly spending the pending refresh token.
- **finishSecret**: move AWSCURRENT to the pending version, then drop its AWSPENDING label.

Every step first checks the token like AWS's templates do: rotation enabled on the secret; the token is a version
of the secret staged AWSPENDING (or already AWSCURRENT: the step is done, nothing to do). createSecret alone also
accepts a token the secret does not list yet (emulators do not show the version stub AWS creates) and creates it.

**The race with the downloaders.** GoPro may rotate refresh tokens: each refresh grant retires the refresh token
it used. Downloaders refresh with the AWSCURRENT refresh token under `DynamoRefreshLock` (the same lock item this
service takes, from `pipeline.credentials.factory.store_for`). So:
1. createSecret takes the lock (waiting briefly for a downloader's refresh to finish), re-reads AWSCURRENT *under
   the lock* (a downloader may just have saved a newer refresh token), refreshes, stores AWSPENDING with the
   version it was derived from, and **keeps the lock** (TTL `ROTATION_LOCK_TTL_SECONDS`) until finishSecret.
   While it is held, AWSCURRENT's refresh token may already be retired, so no downloader may use it: a downloader
   that needs a token waits (TokenManager polls the secret) and adopts the promoted one.
2. finishSecret re-takes the lock, tests the pending credentials once more (a finishSecret invoked on its own
   must not promote anything untested), and promotes only if AWSCURRENT is still the version the pending one was
   derived from. If it changed (an operator re-bootstrapped, or a downloader refreshed after the lock had
   expired), the newer AWSCURRENT is kept and the rotation's version is discarded (its AWSPENDING label removed):
   promoting it would overwrite newer credentials with ones derived from an older chain.
3. A failed step releases the lock and leaves AWSCURRENT untouched: it is never replaced by untested credentials.
   The pending version is not deleted; if its refresh token is the only live one (GoPro retired AWSCURRENT's when
   createSecret refreshed, then the test failed), the next createSecret re-derives from it after AWSCURRENT's
   refresh token is refused.

Web-cookie credentials (a pasted `gp_access_token`, no refresh token) cannot be rotated: createSecret fails with
the re-bootstrap hint. Sign-in credentials with a remembered password rotate even after GoPro revoked the refresh
token: the provider's refresh signs in again (`GoProAuth.refresh`). Every failure emits `RotationFailed` (EMF)
and notifies the alerts topic; a promotion emits `RotationSucceeded`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.aws_errors import error_code
from pipeline.credentials.lock import RefreshLock
from pipeline.credentials.model import ProviderCredentials
from pipeline.credentials.tokens import REAUTH_HINT
from pipeline.errors import SyncError
from pipeline.observability.metrics import Metric, MetricsEmitter
from pipeline.observability.redaction import redact
from pipeline.providers.errors import AuthError, ProviderError
from pipeline.services.secret_versions import AWSCURRENT, AWSPENDING, RotationError, SecretVersions, credentials_of

if TYPE_CHECKING:
    from pipeline.config import Settings

log = logging.getLogger(__name__)

# Extra key in the pending version's JSON (ProviderCredentials.from_json ignores unknown keys).
ROTATION_FIELD = "rotation"
DERIVED_FROM = "derived_from"
# Longer than the four steps take together (seconds), short enough that a crashed rotation blocks downloaders'
# refreshes for minutes, not hours. A downloader gives up waiting after 90 s and lets SQS retry.
ROTATION_LOCK_TTL_SECONDS = 300.0
LOCK_WAIT_SECONDS = 20.0  # a downloader's refresh holds the lock about a second
LOCK_POLL_SECONDS = 0.5
LOCK_OWNER_PREFIX = "rotation:"
SUBJECT_LIMIT = 100  # SNS refuses longer subjects


class Step(StrEnum):
    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"


class BadRotationEvent(SyncError, ValueError):
    """An event that is not a Secrets Manager rotation request: retrying it cannot help."""


@dataclass(frozen=True)
class RotationRequest:
    """One step of one rotation, as Secrets Manager asks for it."""

    secret_id: str
    token: str
    step: Step

    @classmethod
    def from_event(cls, event: Any) -> RotationRequest:
        """From `{"SecretId", "ClientRequestToken", "Step"}`; BadRotationEvent for anything else."""
        if not isinstance(event, Mapping):
            raise BadRotationEvent("a rotation event must be a JSON object")
        secret_id, token, step = event.get("SecretId"), event.get("ClientRequestToken"), event.get("Step")
        if not isinstance(secret_id, str) or not secret_id or not isinstance(token, str) or not token:
            raise BadRotationEvent("a rotation event needs SecretId and ClientRequestToken strings")
        try:
            return cls(secret_id, token, Step(step))
        except ValueError:
            raise BadRotationEvent(f"unknown rotation step {step!r}") from None


@dataclass(frozen=True)
class RotationHooks:
    """What rotation needs from a provider: its refresh grant, and a cheap call that proves a token works."""

    refresh: Callable[[ProviderCredentials], ProviderCredentials]
    test: Callable[[ProviderCredentials], None]


@dataclass(frozen=True)
class Notifier:
    """Where failures are announced: the alerts topic (empty ARN: log only)."""

    sns: Any
    topic_arn: str
    environment: str

    def failed(self, step: Step, secret_id: str, error: str) -> None:
        subject = f"[gopro-sync {self.environment}] Credentials rotation failed ({step.value})"[:SUBJECT_LIMIT]
        body = "\n".join(
            [
                subject,
                "",
                f"Secret: {secret_id}",
                f"Step: {step.value}",
                f"Why: {error}",
                "",
                "AWSCURRENT still holds the previous credentials; nothing untested was promoted.",
                "Secrets Manager retries the rotation; if it keeps failing, see docs/operations.md and the",
                f"runbook (rotation failure). If a new sign-in is needed: {REAUTH_HINT}.",
            ]
        )
        if not self.topic_arn:
            log.error("rotation failed and no alerts topic is configured: %s", error)
            return
        try:
            self.sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=redact(body))
        except ClientError as exc:  # the failure is already logged and counted; a lost e-mail must not hide it
            log.error("could not notify the alerts topic: %s", error_code(exc))


def lock_owner(token: str) -> str:
    return f"{LOCK_OWNER_PREFIX}{token}"


class RotationService:
    def __init__(
        self,
        *,
        secrets: Any,
        lock: RefreshLock,
        hooks: Callable[[], RotationHooks],
        metrics: MetricsEmitter,
        notifier: Notifier,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets_client = secrets
        self._lock = lock
        # A factory, resolved inside `rotate`, so a provider without rotation support fails like any step.
        self._hooks_factory = hooks
        self._resolved: RotationHooks | None = None
        self._metrics = metrics
        self._notifier = notifier
        self._sleep = sleep
        self._clock = clock

    def _hooks(self) -> RotationHooks:
        if self._resolved is None:
            self._resolved = self._hooks_factory()
        return self._resolved

    # --- the entry point ---------------------------------------------------------------------------------------

    def rotate(self, secret_id: str, token: str, step: Step) -> None:
        """Runs one step; on any failure releases the lock, counts, notifies and re-raises (Lambda reports it)."""
        secrets = SecretVersions(self._secrets_client, secret_id)
        try:
            if self._already_current(secrets, token, step):
                return
            self._hooks()  # resolved now: a provider without rotation support fails this step like any other
            {
                Step.CREATE: self._create,
                Step.SET: self._set,
                Step.TEST: self._test,
                Step.FINISH: self._finish,
            }[step](secrets, token)
        except Exception as exc:
            self._release_quietly(token)
            message = (
                str(exc) if isinstance(exc, RotationError | ProviderError) else f"{type(exc).__name__}: {exc}"
            )
            message = redact(message)
            log.error("rotation step %s failed: %s", step.value, message)
            self._metrics.count(Metric.ROTATION_FAILURE, step=step.value)
            self._notifier.failed(step, secret_id, message)
            raise

    def _already_current(self, secrets: SecretVersions, token: str, step: Step) -> bool:
        """AWS's checks before every step; True when the token's version is already AWSCURRENT (done)."""
        metadata = secrets.describe()
        if metadata.get("RotationEnabled") is not True:
            raise RotationError(f"rotation is not enabled for secret {secrets.secret_id}")
        versions = metadata.get("VersionIdsToStages", {})
        if token in versions:
            if AWSCURRENT in versions[token]:
                log.info("version %s is already AWSCURRENT; %s has nothing to do", token, step.value)
                if step is Step.FINISH:
                    self._lock.release(lock_owner(token))
                return True
            if AWSPENDING not in versions[token]:
                raise RotationError(f"version {token} of {secrets.secret_id} is not staged AWSPENDING")
        elif step is not Step.CREATE:
            raise RotationError(f"secret {secrets.secret_id} has no version {token} to rotate")
        return False

    # --- locking -----------------------------------------------------------------------------------------------

    def _release_quietly(self, token: str) -> None:
        """Release after a failure; an error here must not hide the failure being reported (the TTL ends it)."""
        try:
            self._lock.release(lock_owner(token))
        except Exception as exc:
            log.warning("could not release the refresh lock: %s", type(exc).__name__)

    def _take_lock(self, token: str) -> None:
        """The downloaders' refresh lock, waited for a little; RotationError(transient) if it stays busy."""
        deadline = self._clock() + LOCK_WAIT_SECONDS
        while not self._lock.acquire(lock_owner(token), ROTATION_LOCK_TTL_SECONDS):
            if self._clock() >= deadline:
                raise RotationError(
                    "the credentials refresh lock is held (a worker is refreshing the token); Secrets Manager "
                    "will retry the rotation",
                    transient=True,
                )
            self._sleep(LOCK_POLL_SECONDS)

    # --- steps -------------------------------------------------------------------------------------------------

    def _create(self, secrets: SecretVersions, token: str) -> None:
        if secrets.pending_exists(token):
            log.info("createSecret: version %s already exists", token)
            self._lock.acquire(lock_owner(token), ROTATION_LOCK_TTL_SECONDS)  # keep the protection up, if free
            return
        document, _ = secrets.read(stage=AWSCURRENT)
        current = credentials_of(document)
        if not current.renewable:
            raise RotationError(
                f"the secret holds {current.mode} credentials (no refresh token or remembered password with "
                f"client credentials), which cannot be rotated; {REAUTH_HINT}"
            )
        self._take_lock(token)
        document, current_version = secrets.read(stage=AWSCURRENT)  # again, under the lock
        current = credentials_of(document)
        fresh = self._renew(current, self._leftover(secrets, token, current_version))
        pending = json.loads(fresh.to_json())
        pending[ROTATION_FIELD] = {DERIVED_FROM: current_version}
        secrets.put_pending(token, pending)
        log.info("createSecret: stored version %s (from %s) as AWSPENDING", token, current_version)

    def _leftover(self, secrets: SecretVersions, token: str, current_version: str) -> ProviderCredentials | None:
        """The credentials of an unfinished earlier rotation (another version still staged AWSPENDING)."""
        for version, stages in secrets.stages().items():
            if version not in (token, current_version) and AWSPENDING in stages and AWSCURRENT not in stages:
                try:
                    document, _ = secrets.read(version_id=version, stage=AWSPENDING)
                    return credentials_of(document)
                except (ClientError, RotationError):
                    return None
        return None

    def _renew(self, current: ProviderCredentials, leftover: ProviderCredentials | None) -> ProviderCredentials:
        try:
            return self._hooks().refresh(current)
        except AuthError as exc:
            if leftover is not None and leftover.refreshable and leftover.refresh_token != current.refresh_token:
                log.warning("the current refresh token was refused; re-deriving from an unfinished rotation's")
                try:
                    return self._hooks().refresh(leftover)
                except AuthError:
                    pass
            hint = f"; {REAUTH_HINT}" if exc.reauth_required else ""
            raise RotationError(f"the provider refused the refresh grant: {exc}{hint}") from None
        except ProviderError as exc:
            raise RotationError(
                f"the provider could not renew the token: {exc}", transient=exc.transient
            ) from None

    def _set(self, secrets: SecretVersions, token: str) -> None:
        log.info("setSecret: nothing to set, the provider issued the pending tokens itself (version %s)", token)

    def _test(self, secrets: SecretVersions, token: str) -> None:
        document, _ = secrets.read(version_id=token, stage=AWSPENDING)
        pending = credentials_of(document)
        self._lock.acquire(lock_owner(token), ROTATION_LOCK_TTL_SECONDS)  # extend it, if still ours
        self._run_test(pending)
        log.info("testSecret: the provider accepted the pending access token (version %s)", token)

    def _run_test(self, pending: ProviderCredentials) -> None:
        try:
            self._hooks().test(pending)
        except ProviderError as exc:
            message = f"the new credentials failed the test call: {exc}"
            raise RotationError(message, transient=exc.transient) from None

    def _finish(self, secrets: SecretVersions, token: str) -> None:
        document, _ = secrets.read(version_id=token, stage=AWSPENDING)
        derived = document.get(ROTATION_FIELD, {})
        derived_from = derived.get(DERIVED_FROM) if isinstance(derived, dict) else None
        self._take_lock(token)
        current = secrets.current_version()
        if derived_from and current != derived_from:
            secrets.drop_pending(token)
            raise RotationError(
                f"AWSCURRENT changed during the rotation (now version {current}, the new credentials were derived "
                f"from {derived_from}): the newer AWSCURRENT was kept and this rotation's version discarded"
            )
        # Test again right before promoting, under the lock: finishSecret can be invoked on its own (a retried
        # rotation, a person), and nothing untested may ever become AWSCURRENT.
        self._run_test(credentials_of(document))
        secrets.promote(token, current)
        try:
            secrets.drop_pending(token)
        except ClientError as exc:  # cosmetic: AWSPENDING on the AWSCURRENT version counts as a finished rotation
            log.warning("could not remove AWSPENDING from %s: %s", token, error_code(exc))
        self._lock.release(lock_owner(token))
        self._metrics.count(Metric.ROTATION_SUCCESS)
        log.info("finishSecret: version %s is now AWSCURRENT (was %s)", token, current)


# --- provider hooks ------------------------------------------------------------------------------------------


def provider_hooks(settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> RotationHooks:
    """The rotation hooks of the configured provider (only GoPro has rotatable credentials today)."""
    from pipeline.providers.gopro.api import NAME as GOPRO

    if settings.provider != GOPRO:
        raise RotationError(f"provider {settings.provider!r} has no rotatable credentials")
    return gopro_hooks(settings, sleep=sleep)


def gopro_hooks(settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> RotationHooks:
    """GoPro's refresh grant (a sign-in with a remembered password when the refresh token was revoked), and a test
    that makes the night's preflight call with the given access token and never refreshes."""
    from pipeline.credentials.lock import ThreadRefreshLock
    from pipeline.credentials.store import MemoryStore
    from pipeline.credentials.tokens import TokenManager
    from pipeline.providers.gopro.auth import GoProAuth
    from pipeline.providers.gopro.config import GoProSettings
    from pipeline.providers.gopro.provider import build, make_session
    from pipeline.retry import RetryPolicy

    session = make_session()
    auth = GoProAuth(
        auth_url=GoProSettings.of(settings).auth_url,
        session=session,
        timeout=(settings.http_connect_timeout, settings.http_read_timeout),
        policy=RetryPolicy.from_settings(settings),
        sleep=sleep,
    )

    def refuse_refresh(_creds: ProviderCredentials) -> ProviderCredentials:
        raise AuthError("the provider refused the access token under test (it is not refreshed during a test)")

    def test(creds: ProviderCredentials) -> None:
        def tokens(_settings: Settings, _refresher: Callable[..., Any]) -> TokenManager:
            store, lock = MemoryStore(creds), ThreadRefreshLock()
            return TokenManager(store, lock, refuse_refresh, sleep=sleep, environment=settings.environment)

        provider = build(settings, tokens, session=session, sleep=sleep)
        provider.check_credentials()

    return RotationHooks(refresh=auth.refresh, test=test)
