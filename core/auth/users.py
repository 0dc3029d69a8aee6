"""Built-in users: `NAME:ROLE:HASH` lines from JOBDASH_USERS or JOBDASH_USERS_FILE.

JOBDASH_USERS separates lines by newlines or `;`; the file by newlines and allows `#`
comments and blank lines. The file is read again whenever it changes (size or mtime), so
adding, removing or re-ranking a user needs no restart; sessions of a user removed or
re-ranked since they signed in end at their next request (see sessions.py).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jobdash.core.auth.identity import ROLE_NAMES, Identity, Role, parse_role
from jobdash.core.auth.passwords import (
    ScryptHash,
    parse_hash,
    prepare_dummy,
    spend_verification_time,
    verify_password,
)
from jobdash.core.errors import ConfigError

MAX_NAME_CHARS = 64
_NAME = re.compile(r"[^\s:;]+")


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: ScryptHash


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user name (None if it can)."""
    if not name:
        return "the user name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"the user name is longer than {MAX_NAME_CHARS} characters"
    if not _NAME.fullmatch(name) or not name.isprintable():
        return "a user name cannot contain ':', ';', spaces or control characters"
    return None


def parse_user_line(line: str) -> User:
    """One `NAME:ROLE:HASH` line; ValueError saying what is wrong (never echoing the hash)."""
    name, _, rest = line.strip().partition(":")
    role_text, colon, encoded = rest.partition(":")
    if not colon:
        raise ValueError("expected NAME:ROLE:HASH (make one with `jobdash user add`)")
    problem = name_problem(name)
    if problem:
        raise ValueError(problem)
    role = parse_role(role_text)
    if role is None:
        raise ValueError(f"user {name!r}: unknown role {role_text.strip()!r} ({ROLE_NAMES})")
    try:
        password_hash = parse_hash(encoded)
    except ValueError as exc:
        raise ValueError(f"user {name!r}: {exc}") from None
    return User(name, role, password_hash)


def parse_users(lines: list[tuple[str, str]]) -> dict[str, User]:
    """Users from (where, line) pairs; ConfigError naming where the first bad line is."""
    users: dict[str, User] = {}
    for where, line in lines:
        try:
            user = parse_user_line(line)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if user.name in users:
            raise ConfigError(f"{where}: user {user.name!r} is listed twice")
        users[user.name] = user
    return users


def users_from_text(text: str) -> dict[str, User]:
    """JOBDASH_USERS: lines separated by newlines or `;`."""
    entries = [entry.strip() for entry in re.split(r"[;\n]", text)]
    numbered = [(f"JOBDASH_USERS entry {i}", e) for i, e in enumerate(entries, 1) if e]
    return parse_users(numbered)


def users_from_file_text(text: str, path: Path) -> dict[str, User]:
    numbered = [
        (f"JOBDASH_USERS_FILE {path} line {i}", line.strip())
        for i, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#")
    ]
    return parse_users(numbered)


class UserDirectory:
    """The current built-in users, and the constant-time password check."""

    def __init__(self, users: Mapping[str, User] | None = None, path: Path | None = None):
        if (users is None) == (path is None):
            raise ValueError("give users or a path")
        self._users = dict(users or {})
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        prepare_dummy()  # or the first unknown name would take twice as long as the others
        if path is not None:
            self.current()  # a bad file is an error at start, not at the first sign-in

    def current(self) -> Mapping[str, User]:
        if self._path is None:
            return self._users
        with self._lock:
            try:
                stat = os.stat(self._path)
                stamp = (stat.st_mtime_ns, stat.st_size)
                if stamp != self._stamp:
                    text = self._path.read_text(encoding="utf-8")
                    self._users = users_from_file_text(text, self._path)
                    self._stamp = stamp
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                raise ConfigError(
                    f"JOBDASH_USERS_FILE: cannot read {self._path}: {reason}"
                ) from None
            return self._users

    def get(self, name: str) -> User | None:
        return self.current().get(name)

    def authenticate(self, name: str, password: str) -> Identity | None:
        """The identity if the password is right; None otherwise, in the same time either way."""
        user = self.get(name)
        if user is None:
            spend_verification_time(password)
            return None
        if not verify_password(password, user.password_hash):
            return None
        return Identity(user.name, user.role, "builtin")


def load_user_directory(users: str | None, users_file: Path | None) -> UserDirectory | None:
    """The directory the settings describe, or None when built-in sign-in is off."""
    if users and users_file:
        raise ConfigError("set JOBDASH_USERS or JOBDASH_USERS_FILE, not both")
    if users_file:
        return UserDirectory(path=users_file)
    if users and users.strip():
        return UserDirectory(users_from_text(users))
    return None
