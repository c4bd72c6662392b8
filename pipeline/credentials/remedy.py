"""What a person runs when the stored credentials are dead: one exact command per credential mode.

Why here and not in the runbook only: the report and the log line of a failed night must name the command, so the
person reading the e-mail at breakfast can fix it without opening a document (issue 11). The commands are the
bootstrap script's own flags (scripts/bootstrap_credentials.py); keep the two in step.
"""

from __future__ import annotations

from pipeline.credentials.model import CredentialsMode, ProviderCredentials
from pipeline.credentials.tokens import REAUTH_HINT

BOOTSTRAP = "python scripts/bootstrap_credentials.py"
RUNBOOK = "docs/runbook.md, gopro-sync-authentication-failures"


def fix_command(mode: CredentialsMode, environment: str, *, username: str | None = None) -> str:
    """The bootstrap command that stores working credentials of `mode` again for `environment`."""
    base = f"{BOOTSTRAP} --env {environment}"
    if mode is CredentialsMode.SIGN_IN:
        return f"{base} --username {username or '<your GoPro e-mail>'} --remember-password"
    if mode is CredentialsMode.REFRESH_TOKEN:
        return f"{base} --refresh-token-from-stdin"
    return f"{base} --cookie-from-stdin --user-id <gp_user_id cookie>"


def dead_credentials_message(creds: ProviderCredentials, environment: str, cause: str) -> str:
    """One line for the report: the mode, why the credentials are dead, and the exact command that fixes them.

    No "token: value" shapes in it: the redactor masks the word after such a colon."""
    mode = creds.mode
    cause = cause.replace(f"; {REAUTH_HINT}", "")  # the generic hint gives way to the exact command below
    advice = {
        CredentialsMode.SIGN_IN: (
            "sign in again (a remembered password lets the pipeline do this itself next time)"
            if not creds.password
            else "the remembered password was refused too: sign in again (changed password, or two-factor on)"
        ),
        CredentialsMode.REFRESH_TOKEN: "GoPro revoked the refresh token; store a new one (or switch to sign-in)",
        CredentialsMode.WEB_COOKIE: "a web cookie lasts about one night; copy a fresh one from the browser",
    }[mode]
    command = fix_command(mode, environment, username=creds.username)
    return f'credentials mode "{mode.label}" - {cause}; {advice}. Fix: {command} ({RUNBOOK})'
