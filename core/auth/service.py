"""One process's sign-in: the users, the role rules, the session cookie, the failure limits.

Pages (app/ui/auth.py) and routes (app/web/auth_routes.py) share one AuthService per process,
so the rate limits and a loopback process's random session key are the same for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jobdash.core.auth.identity import ANONYMOUS, Identity, NoRole
from jobdash.core.auth.passwords import MAX_PASSWORD_CHARS, spend_verification_time
from jobdash.core.auth.rate_limit import FailureLimiter, refusal_message
from jobdash.core.auth.roles import RoleRule, identity_from_claims, parse_role_rules
from jobdash.core.auth.sessions import SessionCodec, session_secret
from jobdash.core.auth.users import MAX_NAME_CHARS, UserDirectory, load_user_directory
from jobdash.core.settings import AuthSettings

WRONG_CREDENTIALS = "wrong user name or password"

# Per name: a guesser is stopped after 5 tries. Per address: looser, because behind a proxy
# or a NAT many people share one address and one person's typos must not lock out the rest.
NAME_LIMIT, ADDRESS_LIMIT, WINDOW_S = 5, 20, 300


@dataclass(frozen=True)
class SignInOutcome:
    identity: Identity | None
    problem: str | None = None  # one line for the form
    status: int = 200  # 401 wrong credentials, 429 refused for a while


@dataclass
class AuthService:
    users: UserDirectory | None
    rules: tuple[RoleRule, ...]
    groups_claim: str
    sessions: SessionCodec | None
    oidc_secret: str | None  # Streamlit's cookie secret when st.login is configured, else None
    secret: str | None  # signs sessions and CSRF tokens (None without built-in sign-in)
    cookie_secure: bool | None
    by_name: FailureLimiter = field(default_factory=lambda: FailureLimiter(NAME_LIMIT, WINDOW_S))
    by_address: FailureLimiter = field(
        default_factory=lambda: FailureLimiter(ADDRESS_LIMIT, WINDOW_S)
    )

    @property
    def oidc(self) -> bool:
        return self.oidc_secret is not None

    @property
    def builtin(self) -> bool:
        return self.users is not None

    @property
    def sign_in(self) -> str | None:
        """What sign-in is configured, in words (None: none, everyone is anonymous)."""
        kinds = [
            kind
            for kind, on in (("an identity provider", self.oidc), ("built-in users", self.builtin))
            if on
        ]
        return " and ".join(kinds) or None

    def anonymous(self) -> Identity | None:
        """Who an unsigned request is: ANONYMOUS when no sign-in is configured, else nobody."""
        return None if self.sign_in else ANONYMOUS

    def attempt_sign_in(
        self, name: str, password: str, address: str | None, now: float | None = None
    ) -> SignInOutcome:
        """Check a built-in user's password, within the failure limits."""
        if self.users is None:
            return SignInOutcome(None, "built-in sign-in is not configured", 404)
        name_key, address_key = ("name", name.casefold()), ("address", address or "?")
        wait = max(
            self.by_name.retry_after(name_key, now), self.by_address.retry_after(address_key, now)
        )
        if wait > 0:
            return SignInOutcome(None, refusal_message(wait), 429)
        if not name or len(name) > MAX_NAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
            spend_verification_time("")
            identity = None
        else:
            identity = self.users.authenticate(name, password)
        if identity is None:
            self.by_name.record_failure(name_key, now)
            self.by_address.record_failure(address_key, now)
            return SignInOutcome(None, WRONG_CREDENTIALS, 401)
        self.by_name.clear(name_key)
        self.by_address.clear(address_key)
        return SignInOutcome(identity)

    def issue_session(self, identity: Identity, now: float | None = None) -> str:
        if self.sessions is None:
            raise ValueError("built-in sign-in is not configured")
        return self.sessions.issue(identity, now)

    def read_session(self, value: str | None, now: float | None = None) -> Identity | None:
        return self.sessions.read(value, now) if self.sessions else None

    def identity_from_claims(self, claims: Mapping[str, object]) -> Identity | NoRole | None:
        return identity_from_claims(claims, self.rules, self.groups_claim)


def build_auth_service(
    settings: AuthSettings,
    *,
    host: str | None,
    oidc_secret: str | None = None,
    fallback_secret: str | None = None,
) -> AuthService:
    """The service the settings describe; ConfigError (one line) when they cannot work.

    `host` is the address the dashboard binds (decides whether a missing cookie secret may be
    replaced by a per-process one); `oidc_secret` Streamlit's cookie secret when it has an
    `[auth]` section (st.login configured), else None; `fallback_secret` Streamlit's cookie
    secret ([auth].cookie_secret or server.cookieSecret) when either was set explicitly.
    """
    users = load_user_directory(settings.users, settings.users_file)
    rules = parse_role_rules(settings.roles)
    secret = sessions = None
    if users is not None:
        configured, source = settings.cookie_secret, settings.cookie_secret_source
        if not configured and fallback_secret:
            configured, source = fallback_secret, "Streamlit's cookie secret"
        secret = session_secret(configured, source, host)
        sessions = SessionCodec(secret, settings.session_hours, users)
    return AuthService(
        users=users,
        rules=rules,
        groups_claim=settings.groups_claim,
        sessions=sessions,
        oidc_secret=oidc_secret,
        secret=secret,
        cookie_secure=settings.cookie_secure,
    )
