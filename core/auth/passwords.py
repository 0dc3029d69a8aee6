"""Password hashes for built-in users: scrypt (stdlib), parameters inside the hash string.

Format: `scrypt$n=16384,r=8,p=1$<salt>$<key>`, salt and key in unpadded URL-safe base64
(no `:` or `;`, so a hash fits in a JOBDASH_USERS line). n=2^14, r=8 costs about 16 MiB and
~50 ms per check: slow enough to make guessing expensive, fast enough for a sign-in form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import cache

DEFAULT_N, DEFAULT_R, DEFAULT_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
MAX_PASSWORD_CHARS = 1024

# Bounds on what a users file may ask for: a typo must not make each sign-in take a minute.
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16
_FORMAT = re.compile(r"scrypt\$n=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def encode(self) -> str:
        return f"scrypt$n={self.n},r={self.r},p={self.p}${_b64(self.salt)}${_b64(self.key)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL wants room for the whole working set: 128·r·(n + p + 2) bytes, plus slack.
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


def parse_hash(encoded: str) -> ScryptHash:
    """The parts of an encoded hash; ValueError (one line, without the hash) if unusable."""
    match = _FORMAT.fullmatch(encoded.strip())
    if not match:
        raise ValueError("not a scrypt hash (expected scrypt$n=…,r=…,p=…$salt$key)")
    n, r, p = (int(group) for group in match.groups()[:3])
    if n < 2 or n & (n - 1) or n > _MAX_N:
        raise ValueError(f"scrypt n must be a power of 2 between 2 and {_MAX_N}")
    if not 1 <= r <= _MAX_R or not 1 <= p <= _MAX_P:
        raise ValueError(f"scrypt r must be 1..{_MAX_R} and p 1..{_MAX_P}")
    try:
        salt, key = _unb64(match.group(4)), _unb64(match.group(5))
    except ValueError:
        raise ValueError("the salt or key of the scrypt hash is not base64") from None
    if len(salt) < 8 or len(key) < 16:
        raise ValueError("the salt or key of the scrypt hash is too short")
    return ScryptHash(n, r, p, salt, key)


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """A new salted hash of `password` (ValueError for an empty or overlong password)."""
    if not password:
        raise ValueError("the password is empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(SALT_BYTES)
    return ScryptHash(n, r, p, salt, _derive(password, salt, n, r, p, KEY_BYTES)).encode()


def verify_password(password: str, stored: ScryptHash) -> bool:
    """Whether `password` matches, compared in constant time."""
    if len(password) > MAX_PASSWORD_CHARS:
        password = ""  # still spend the time: length must not shortcut the answer
    candidate = _derive(password, stored.salt, stored.n, stored.r, stored.p, len(stored.key))
    return hmac.compare_digest(candidate, stored.key) and bool(password)


@cache
def _dummy() -> ScryptHash:
    return parse_hash(hash_password(secrets.token_urlsafe(16)))


def prepare_dummy() -> None:
    _dummy()


def spend_verification_time(password: str) -> None:
    """Do the work of a check against nobody, so an unknown user name takes as long."""
    verify_password(password, _dummy())
