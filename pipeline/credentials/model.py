"""The credentials a provider needs, in the JSON shape of the `gopro/credentials/<env>` secret.

Three modes (docs/deployment.md, "Credentials"), recorded in the secret's `mode` field:
- *sign_in*: the password grant with the user's own client id and secret. The refresh token it gives is renewed
  every night; if GoPro revokes it (`token_blacklisted`, `invalid_grant`) the pipeline signs in again by itself,
  but only when the password was stored (`--remember-password`). Without it, a revoked token needs a person.
- *refresh_token*: a refresh token the user supplied (plus the client id and secret); renewed every night, and a
  revoked one needs a person.
- *web_cookie*: the web app's `gp_access_token` cookie (and `gp_user_id`): about one night, never renewed.
No source gives a refresh token's lifetime, so nothing here promises one. Every secret value is registered with
the redactor as soon as an object is built, so it cannot reach a log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from pipeline.clock import iso_utc, parse_iso_utc
from pipeline.errors import SyncError
from pipeline.observability.redaction import register_secret


class CredentialsError(SyncError, ValueError):
    """The stored credentials are missing or malformed; the message never contains a value."""


class SecretMissing(CredentialsError):
    """The credentials secret does not exist (nothing was ever stored): the command line's "not found"."""


class Field(StrEnum):
    CLIENT_ID = "client_id"
    CLIENT_SECRET = "client_secret"
    REFRESH_TOKEN = "refresh_token"
    ACCESS_TOKEN = "access_token"
    EXPIRES_AT = "expires_at"
    USER_ID = "user_id"
    UPDATED_AT = "updated_at"
    MODE = "mode"
    USERNAME = "username"
    PASSWORD = "password"  # only with `--remember-password`


class CredentialsMode(StrEnum):
    SIGN_IN = "sign_in"
    REFRESH_TOKEN = "refresh_token"
    WEB_COOKIE = "web_cookie"

    @property
    def label(self) -> str:
        """How a person names the mode (reports, alarms, the bootstrap's output)."""
        return _LABELS[self]


_LABELS = {
    CredentialsMode.SIGN_IN: "sign-in (username and password)",
    CredentialsMode.REFRESH_TOKEN: "refresh token",
    CredentialsMode.WEB_COOKIE: "web cookie (gp_access_token)",
}


@dataclass(frozen=True)
class ProviderCredentialsOverride:
    """Credentials given through the environment (the provider's settings read them); they take precedence over
    the stored secret.

    Kept out of `repr` so a settings object can be logged without leaking anything.
    """

    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)

    @property
    def present(self) -> bool:
        return bool(self.refresh_token or self.access_token)


@dataclass(frozen=True)
class ProviderCredentials:
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds; None = unknown
    user_id: str | None = None
    updated_at: float | None = None
    # Recorded by the bootstrap; None (a secret written before modes existed): inferred from the fields.
    declared_mode: CredentialsMode | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for value in (self.access_token, self.refresh_token, self.client_id, self.client_secret, self.password):
            register_secret(value)
        if self.declared_mode is not None and not isinstance(self.declared_mode, CredentialsMode):
            object.__setattr__(self, "declared_mode", CredentialsMode(self.declared_mode))

    @property
    def refreshable(self) -> bool:
        return bool(self.refresh_token and self.client_id and self.client_secret)

    @property
    def can_sign_in(self) -> bool:
        """A remembered password (and the client credential): the pipeline can sign in again by itself."""
        return bool(self.username and self.password and self.client_id and self.client_secret)

    @property
    def renewable(self) -> bool:
        """Whether a new access token can be had without a person: a refresh, or a sign-in with the password."""
        return self.refreshable or self.can_sign_in

    @property
    def mode(self) -> CredentialsMode:
        if self.declared_mode is not None:
            return self.declared_mode
        if self.username:
            return CredentialsMode.SIGN_IN
        return CredentialsMode.REFRESH_TOKEN if self.refreshable else CredentialsMode.WEB_COOKIE

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        """True when the access token is absent or ends within `seconds` (unknown expiry counts as valid)."""
        if not self.access_token:
            return True
        if self.expires_at is None:
            return False
        return (now if now is not None else time.time()) + seconds >= self.expires_at

    def with_tokens(
        self,
        *,
        access_token: str,
        expires_in: float | None,
        refresh_token: str | None,
        user_id: str | None,
        now: float,
    ) -> ProviderCredentials:
        return replace(
            self,
            access_token=access_token,
            refresh_token=refresh_token or self.refresh_token,
            expires_at=now + expires_in if expires_in is not None else None,
            user_id=user_id or self.user_id,
            updated_at=now,
        )

    def to_json(self) -> str:
        document = {
            Field.CLIENT_ID: self.client_id,
            Field.CLIENT_SECRET: self.client_secret,
            Field.REFRESH_TOKEN: self.refresh_token,
            Field.ACCESS_TOKEN: self.access_token,
            Field.EXPIRES_AT: _iso(self.expires_at),
            Field.USER_ID: self.user_id,
            Field.UPDATED_AT: _iso(self.updated_at),
            Field.MODE: str(self.mode),
            Field.USERNAME: self.username,
            Field.PASSWORD: self.password,
        }
        return json.dumps({k: v for k, v in document.items() if v is not None}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProviderCredentials:
        try:
            document = json.loads(text)
        except (TypeError, ValueError):
            raise CredentialsError("the credentials secret is not JSON") from None
        if not isinstance(document, dict):
            raise CredentialsError("the credentials secret must be a JSON object")
        strings = {}
        names = (
            Field.CLIENT_ID,
            Field.CLIENT_SECRET,
            Field.REFRESH_TOKEN,
            Field.ACCESS_TOKEN,
            Field.USER_ID,
            Field.MODE,
            Field.USERNAME,
            Field.PASSWORD,
        )
        for name in names:
            value = document.get(name)
            if value is not None and not isinstance(value, str):
                raise CredentialsError(f"credentials field {name!r} must be a string")
            strings[name] = value or None
        creds = cls(
            access_token=strings[Field.ACCESS_TOKEN],
            refresh_token=strings[Field.REFRESH_TOKEN],
            client_id=strings[Field.CLIENT_ID],
            client_secret=strings[Field.CLIENT_SECRET],
            user_id=strings[Field.USER_ID],
            expires_at=_epoch(document.get(Field.EXPIRES_AT), Field.EXPIRES_AT),
            updated_at=_epoch(document.get(Field.UPDATED_AT), Field.UPDATED_AT),
            declared_mode=_mode(strings[Field.MODE]),
            username=strings[Field.USERNAME],
            password=strings[Field.PASSWORD],
        )
        if not creds.access_token and not creds.renewable:
            raise CredentialsError(
                "the credentials secret holds neither an access token nor client id, client secret and a refresh "
                "token or remembered password; run scripts/bootstrap_credentials.py"
            )
        return creds


def _mode(value: str | None) -> CredentialsMode | None:
    if value is None:
        return None
    try:
        return CredentialsMode(value)
    except ValueError:
        known = ", ".join(m.value for m in CredentialsMode)
        raise CredentialsError(f"credentials field 'mode' must be one of {known}") from None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return iso_utc(datetime.fromtimestamp(epoch, UTC), timespec="auto")


def _epoch(value: object, name: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CredentialsError(f"credentials field {name!r} must be an ISO-8601 time or epoch seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_iso_utc(value).timestamp()
        except ValueError:
            pass
    raise CredentialsError(f"credentials field {name!r} must be an ISO-8601 time or epoch seconds")
