"""The built-in sign-in's session cookie: signed (itsdangerous, HMAC-SHA256 with a key derived
from the cookie secret), not encrypted: it holds nothing secret.

Payload: name, role, issued at, expires at, and a fingerprint of the user's password hash
(an HMAC under the same secret, so it reveals nothing). A cookie is refused when its signature
is wrong, it has expired (its own expiry, or `hours` after issue if JOBDASH_SESSION_HOURS was
lowered since), the user is gone, the user's role differs from the one signed, or the password
changed: editing the users file signs that user out everywhere at the next request.
Any process with the same secret accepts it: it survives restarts and works across replicas.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from jobdash.core.auth.exposure import is_loopback
from jobdash.core.auth.identity import Identity, Role, parse_role
from jobdash.core.auth.users import User, UserDirectory
from jobdash.core.errors import ConfigError

SESSION_COOKIE = "jobdash_session"
MIN_SECRET_BYTES = 32
_SALT = "jobdash.session.v1"
_CLOCK_SKEW_S = 60  # replicas' clocks may differ a little


def session_secret(configured: str | None, source: str, host: str | None) -> str:
    """The key for session cookies.

    A configured secret must have at least 32 bytes. Without one, a loopback address gets a
    random key for this process (sessions then end when the dashboard restarts); any other
    address is refused, since a restart or a second replica would sign everyone out.
    """
    if configured:
        if len(configured.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"{source} must be at least {MIN_SECRET_BYTES} bytes "
                '(make one: python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        return configured
    if is_loopback(host):
        return secrets.token_urlsafe(32)
    raise ConfigError(
        f"built-in sign-in on {host or 'every interface'} needs JOBDASH_COOKIE_SECRET "
        f"(at least {MIN_SECRET_BYTES} bytes, the same on every replica)"
    )


@dataclass(frozen=True)
class SessionCodec:
    secret: str
    hours: float
    users: UserDirectory

    @property
    def max_age_s(self) -> int:
        return int(self.hours * 3600)

    def _fingerprint(self, user: User) -> str:
        key = hashlib.sha256(b"jobdash.password-fingerprint\0" + self.secret.encode()).digest()
        digest = hmac.new(key, user.password_hash.encode().encode(), "sha256").hexdigest()
        return digest[:32]

    def _serializer(self) -> URLSafeSerializer:
        return URLSafeSerializer(
            self.secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def issue(self, identity: Identity, now: float | None = None) -> str:
        """The cookie value for a built-in user who just signed in."""
        user = self.users.get(identity.name)
        if identity.source != "builtin" or user is None:
            raise ValueError("sessions are only issued to built-in users")
        issued = int(time.time() if now is None else now)
        payload = {
            "n": user.name,
            "r": user.role.value,
            "iat": issued,
            "exp": issued + self.max_age_s,
            "h": self._fingerprint(user),
        }
        return self._serializer().dumps(payload)

    def read(self, value: str | None, now: float | None = None) -> Identity | None:
        """The identity a cookie value proves, or None (see the module docstring for when)."""
        if not value or len(value) > 4096:
            return None
        try:
            payload = self._serializer().loads(value)
        except BadSignature:
            return None
        if not isinstance(payload, dict):
            return None
        name, role_text, fingerprint = payload.get("n"), payload.get("r"), payload.get("h")
        issued, expires = payload.get("iat"), payload.get("exp")
        if not (
            isinstance(name, str)
            and isinstance(role_text, str)
            and isinstance(fingerprint, str)
            and type(issued) is int
            and type(expires) is int
        ):
            return None
        current = time.time() if now is None else now
        if not issued - _CLOCK_SKEW_S <= current < min(expires, issued + self.max_age_s):
            return None
        user = self.users.get(name)
        role = parse_role(role_text)
        if user is None or role is None or user.role is not Role(role):
            return None
        if not hmac.compare_digest(fingerprint, self._fingerprint(user)):
            return None
        return Identity(user.name, user.role, "builtin")
