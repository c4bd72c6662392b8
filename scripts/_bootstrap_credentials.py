"""Stores the GoPro credentials the pipeline reads (secret gopro/credentials/<env>), in one of three modes.

GoPro publishes no API for individuals: every public client uses the client id and secret embedded in GoPro's own
web app, and this project ships none (docs/deployment.md, "Credentials", says where such values come from and what
using them means under GoPro's terms). Two-factor and social-login accounts cannot use
the first two modes: the password grant does not serve them.

- sign in: --username EMAIL; the password is asked for without echo (never a flag). The password grant with YOUR
  client id and secret (--client-id/--client-secret or GOPRO_CLIENT_ID/GOPRO_CLIENT_SECRET). The refresh token is
  renewed every night; GoPro does revoke refresh tokens (`token_blacklisted`), and with --remember-password the
  password is stored in the secret so the pipeline signs in again by itself: the one mode that survives
  unattended nights. Without it, a revoked token stops the nightly run until you run this again.
- --refresh-token-from-stdin: a refresh token you already have (plus the client id and secret); it is exchanged
  once at once (a typo fails now, not at 2 a.m.) and the result stored. Renewed every night until GoPro revokes it.
- --cookie-from-stdin (or --access-token-from-stdin): the web app's `gp_access_token` cookie, pasted, with
  --user-id (the `gp_user_id` cookie). Lasts about one night, then the authentication alarm asks for a new one.

The new credentials are tried with the night's preflight call before they are stored (--no-verify skips it). The
secret is written under the downloaders' refresh lock, so a refresh running at that moment cannot overwrite it.
Nothing secret is ever printed: the output names the secret, the mode, the user id and the token's expiry only.

Example: GOPRO_CLIENT_ID=... GOPRO_CLIENT_SECRET=... python scripts/bootstrap_credentials.py --env prod \\
         --username me@example.com --remember-password
"""

from __future__ import annotations

import base64
import getpass
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import ClientError

from pipeline.clock import iso_utc
from pipeline.credentials.factory import store_for
from pipeline.credentials.model import CredentialsMode, ProviderCredentials
from pipeline.credentials.remedy import fix_command
from pipeline.observability.redaction import register_secret
from pipeline.providers.gopro.api import COOKIE_TOKEN
from pipeline.providers.gopro.api import NAME as GOPRO
from pipeline.providers.gopro.config import CREDENTIAL_VARIABLES, GoProSettings
from pipeline.services.rotation import gopro_hooks
from scripts._common import (
    EXIT_OK,
    Context,
    GoProCredentialsMissing,
    ScriptError,
    UsageError,
    aws_call,
    is_not_found,
    load_context,
    setup_logging,
    translate_aws_error,
)

log = logging.getLogger(__name__)

NAME = "bootstrap_credentials"
LOCK_TTL_SECONDS = 60.0
LOCK_WAIT_SECONDS = 30.0
LOCK_POLL_SECONDS = 0.5
SECRET_DESCRIPTION = "GoPro credentials of gopro-s3-sync (written by scripts/bootstrap_credentials.py)"


# --- reading secrets from a person -------------------------------------------------------------------------


def read_secret_line(prompt: str, stdin: TextIO | None = None) -> str:
    """One line from stdin; from a terminal it is read without echo."""
    stream = stdin or sys.stdin
    value = getpass.getpass(prompt) if stream.isatty() else stream.readline()
    value = value.strip()
    register_secret(value)
    if not value:
        raise UsageError("nothing was read from stdin")
    return value


def client_credentials(args: Any, ctx: Context) -> tuple[str, str]:
    override = GoProSettings.of(ctx.settings).credentials_override
    client_id = args.client_id or override.client_id
    client_secret = args.client_secret or override.client_secret
    register_secret(client_secret)
    if not client_id or not client_secret:
        raise GoProCredentialsMissing(
            "a client id and secret are needed (--client-id/--client-secret or GOPRO_CLIENT_ID/"
            'GOPRO_CLIENT_SECRET); this project ships none (docs/deployment.md, "Credentials")'
        )
    return client_id, client_secret


def jwt_expiry(token: str) -> float | None:
    """`exp` of a JWT (three dot-separated parts), read without verification; None for anything else (a JWE)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


# --- obtaining the credentials -------------------------------------------------------------------------------


def obtain(
    args: Any, ctx: Context, *, password_prompt: Callable[[str], str] = getpass.getpass
) -> ProviderCredentials:
    hooks = gopro_hooks(ctx.settings)
    if args.remember_password and not args.username:
        raise UsageError("--remember-password goes with --username (sign-in mode)")
    if args.cookie_from_stdin:
        token = read_secret_line(f"Paste the {COOKIE_TOKEN} cookie: ")
        creds = ProviderCredentials(
            access_token=token,
            user_id=args.user_id,
            expires_at=jwt_expiry(token),
            updated_at=time.time(),
            declared_mode=CredentialsMode.WEB_COOKIE,
        )
        if creds.expires_within(0):
            raise UsageError("this access token has already expired; copy a fresh one from the web app")
    elif args.refresh_token_from_stdin:
        client_id, client_secret = client_credentials(args, ctx)
        token = read_secret_line("Paste the refresh token: ")
        creds = ProviderCredentials(
            refresh_token=token,
            client_id=client_id,
            client_secret=client_secret,
            declared_mode=CredentialsMode.REFRESH_TOKEN,
        )
        if args.no_verify:
            return creds
        creds = hooks.refresh(creds)
    else:
        from pipeline.providers.gopro.auth import GoProAuth
        from pipeline.providers.gopro.provider import make_session
        from pipeline.retry import RetryPolicy

        client_id, client_secret = client_credentials(args, ctx)
        password = password_prompt(f"GoPro password for {args.username}: ")
        register_secret(password)
        if not password:
            raise UsageError("an empty password was given")
        auth = GoProAuth(
            auth_url=GoProSettings.of(ctx.settings).auth_url,
            session=make_session(),
            timeout=(ctx.settings.http_connect_timeout, ctx.settings.http_read_timeout),
            policy=RetryPolicy.from_settings(ctx.settings),
        )
        creds = auth.sign_in(
            username=args.username,
            password=password,
            client_id=client_id,
            client_secret=client_secret,
            remember_password=args.remember_password,
        )
    log.info("obtained %s", creds)  # the dataclass repr leaves every token out
    if not args.no_verify:
        log.info("trying the credentials with the night's preflight call")
        hooks.test(creds)
    return creds


# --- storing them --------------------------------------------------------------------------------------------


@contextmanager
def refresh_lock(ctx: Context) -> Iterator[None]:
    """The downloaders' refresh lock while the secret is written (skipped when the state table does not exist)."""
    settings = ctx.settings.with_env(dict.fromkeys(CREDENTIAL_VARIABLES))  # the secret's store, not the variables
    _store, lock, _ = store_for(settings)
    owner = f"bootstrap:{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    try:
        while not lock.acquire(owner, LOCK_TTL_SECONDS):
            if time.monotonic() >= deadline:
                raise ScriptError("a token refresh or rotation holds the credentials lock; try again in a minute")
            time.sleep(LOCK_POLL_SECONDS)
    except ClientError as exc:
        if not is_not_found(exc):
            raise translate_aws_error(exc, f"table {settings.table_name}", ctx) from None
        locked = False  # no state table yet: nothing can be refreshing
    else:
        locked = True
    try:
        yield
    finally:
        if locked:
            lock.release(owner)


def store(ctx: Context, creds: ProviderCredentials) -> str:
    """Writes AWSCURRENT of the environment's secret (creating the secret if needed); returns the version id."""
    secret_id = ctx.settings.credentials_secret_id
    secrets = ctx.client("secretsmanager")
    log.info("writing secret %s", secret_id)
    with refresh_lock(ctx), aws_call(f"secret {secret_id}", ctx):
        try:
            answer = secrets.put_secret_value(SecretId=secret_id, SecretString=creds.to_json())
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            answer = secrets.create_secret(
                Name=secret_id, SecretString=creds.to_json(), Description=SECRET_DESCRIPTION
            )
    return str(answer.get("VersionId", ""))


def describe(creds: ProviderCredentials) -> str:
    expiry = (
        iso_utc(datetime.fromtimestamp(creds.expires_at, UTC), timespec="minutes")
        if creds.expires_at
        else "unknown"
    )
    return f"mode {creds.mode}, user id {creds.user_id or 'unknown'}, access token valid until {expiry}"


def lifetime_note(creds: ProviderCredentials, environment: str) -> str:
    """What this mode survives, in the words of docs/deployment.md, and the command for when it stops."""
    again = fix_command(creds.mode, environment, username=creds.username)
    if creds.mode is CredentialsMode.WEB_COOKIE:
        return f"note: a web cookie lasts about one night and cannot be renewed; tomorrow run: {again}"
    if creds.can_sign_in:
        return (
            "survives unattended nights: the token is renewed every night, and if GoPro revokes the refresh token "
            "the pipeline signs in again with the remembered password"
        )
    return (
        "note: the token is renewed every night until GoPro revokes the refresh token (it does, without notice); "
        f"then the authentication alarm fires and you run: {again}"
    )


def execute(args: Any, *, password_prompt: Callable[[str], str] = getpass.getpass) -> int:
    setup_logging(args)
    ctx = load_context(args)
    if ctx.settings.provider != GOPRO:
        raise UsageError(f"bootstrap signs in to GoPro; SYNC_PROVIDER is {ctx.settings.provider!r}")
    creds = obtain(args, ctx, password_prompt=password_prompt)
    version = store(ctx, creds)
    print(
        f"stored the credentials in secret {ctx.settings.credentials_secret_id} ({ctx.where}), version {version}"
    )
    print(describe(creds))
    print(lifetime_note(creds, ctx.settings.environment))
    return EXIT_OK
