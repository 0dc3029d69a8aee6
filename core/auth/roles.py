"""JOBDASH_ROLES: which role a person from the identity provider gets, by e-mail or group.

Entries are separated by commas, semicolons or newlines; each is `ROLE=WHO` or `WHO=ROLE`:
    operator=ops@acme.com, *@acme.com=viewer, admin=alice@acme.com, operator=group:oncall
WHO is an exact e-mail (any case), `*@domain` (that domain only, not its subdomains) or
`group:NAME` (NAME exactly as the groups claim carries it).

Precedence: the most privileged matching entry wins, whatever the order. Entries only ever
grant, so reading them never depends on their order, and `*@acme.com=viewer` cannot demote
someone another entry makes an operator. Nobody matched gets no role (a "not allowed" page).
An e-mail the provider marks unverified (`email_verified: false`) matches no e-mail entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from jobdash.core.auth.identity import ROLE_NAMES, Identity, NoRole, Role, parse_role
from jobdash.core.errors import ConfigError

Kind = Literal["email", "domain", "group"]

_SEPARATORS = re.compile(r"[,;\n]")
# Deliberately loose (providers differ) but never whitespace, never a second @.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_DOMAIN = re.compile(r"[^@\s*]+\.[^@\s*]+|[^@\s*.]+")
_EXPECTED = "expected ROLE=EMAIL, ROLE=*@DOMAIN or ROLE=group:NAME, with ROLE one of " + ROLE_NAMES


@dataclass(frozen=True)
class RoleRule:
    role: Role
    kind: Kind
    value: str  # lower-cased e-mail or domain; a group name as written

    def matches(self, email: str | None, groups: frozenset[str]) -> bool:
        if self.kind == "group":
            return self.value in groups
        if email is None:
            return False
        if self.kind == "email":
            return email == self.value
        return email.rpartition("@")[2] == self.value


def _bad(entry: str, why: str = _EXPECTED) -> ConfigError:
    return ConfigError(f"JOBDASH_ROLES: cannot use entry {entry!r}: {why}")


def _parse_who(who: str, entry: str) -> tuple[Kind, str]:
    if who.startswith("group:"):
        group = who.removeprefix("group:").strip()
        if not group:
            raise _bad(entry, "the group name is empty")
        return "group", group
    if who.startswith("*@"):
        domain = who.removeprefix("*@").lower()
        if not _DOMAIN.fullmatch(domain):
            raise _bad(entry, "the domain after *@ is not a domain name")
        return "domain", domain
    if "*" in who or not _EMAIL.fullmatch(who):
        raise _bad(entry)
    return "email", who.lower()


def parse_role_rules(text: str) -> tuple[RoleRule, ...]:
    """The rules of a JOBDASH_ROLES value; ConfigError naming the first bad entry."""
    rules = []
    for raw in _SEPARATORS.split(text):
        entry = raw.strip()
        if not entry:
            continue
        left, equals, right = (part.strip() for part in entry.partition("="))
        if not equals or not left or not right:
            raise _bad(entry)
        left_role, right_role = parse_role(left), parse_role(right)
        if left_role and not right_role:
            role, who = left_role, right
        elif right_role and not left_role:
            role, who = right_role, left
        else:
            raise _bad(entry)
        kind, value = _parse_who(who, entry)
        rules.append(RoleRule(role, kind, value))
    return tuple(rules)


def role_for(
    rules: Iterable[RoleRule], email: str | None, groups: Iterable[str] = ()
) -> Role | None:
    """The most privileged role any rule gives this e-mail or these groups, else None."""
    normalized = email.strip().lower() if email else None
    group_set = frozenset(groups)
    matched = [rule.role for rule in rules if rule.matches(normalized, group_set)]
    return max(matched, default=None)


def _groups(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset([value])
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def identity_from_claims(
    claims: Mapping[str, object], rules: Iterable[RoleRule], groups_claim: str = "groups"
) -> Identity | NoRole | None:
    """The identity for an identity provider's claims (None when they name nobody)."""
    email = claims.get("email")
    email = email.strip() if isinstance(email, str) and email.strip() else None
    usable_email = None if claims.get("email_verified") is False else email
    name = next(
        (
            value.strip()
            for value in (email, claims.get("preferred_username"), claims.get("sub"))
            if isinstance(value, str) and value.strip()
        ),
        None,
    )
    if name is None:
        return None
    role = role_for(rules, usable_email, _groups(claims.get(groups_claim)))
    return Identity(name, role, "oidc") if role else NoRole(name, "oidc")
