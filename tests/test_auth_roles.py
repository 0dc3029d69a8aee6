"""JOBDASH_ROLES: parsing, matching, precedence (most privileged wins), identities from claims."""

from __future__ import annotations

import pytest

from jobdash.core.auth.identity import Identity, NoRole, Role
from jobdash.core.auth.roles import identity_from_claims, parse_role_rules, role_for
from jobdash.core.errors import ConfigError

EXAMPLE = "operator=ops@acme.com,*@acme.com=viewer,admin=alice@acme.com; operator=group:oncall"


def test_the_documented_example_parses_either_way_round():
    rules = parse_role_rules(EXAMPLE)
    assert [(r.role, r.kind, r.value) for r in rules] == [
        (Role.OPERATOR, "email", "ops@acme.com"),
        (Role.VIEWER, "domain", "acme.com"),
        (Role.ADMIN, "email", "alice@acme.com"),
        (Role.OPERATOR, "group", "oncall"),
    ]


def test_newlines_and_blank_entries_are_fine_and_empty_means_no_rules():
    assert len(parse_role_rules("\n  viewer = *@acme.com ,\n\n ADMIN=a@b.c ;")) == 2
    assert parse_role_rules("") == ()


@pytest.mark.parametrize(
    ("email", "groups", "expected"),
    [
        ("ops@acme.com", (), Role.OPERATOR),  # the exact entry beats the domain one
        ("OPS@Acme.COM", (), Role.OPERATOR),  # e-mails compare without case
        ("bob@acme.com", (), Role.VIEWER),
        ("alice@acme.com", ("oncall",), Role.ADMIN),
        ("bob@acme.com", ("oncall",), Role.OPERATOR),
        ("bob@sub.acme.com", (), None),  # a domain entry is that domain only
        ("bob@evilacme.com", (), None),
        ("acme.com@evil.test", (), None),
        (None, ("oncall",), Role.OPERATOR),
        (None, ("OnCall",), None),  # group names compare exactly
        ("eve@elsewhere.test", ("staff",), None),
    ],
)
def test_most_privileged_match_wins_and_unknown_people_get_nothing(email, groups, expected):
    assert role_for(parse_role_rules(EXAMPLE), email, groups) == expected


def test_order_does_not_matter():
    forward = parse_role_rules("viewer=*@acme.com,admin=ops@acme.com")
    backward = parse_role_rules("admin=ops@acme.com,viewer=*@acme.com")
    assert role_for(forward, "ops@acme.com") is role_for(backward, "ops@acme.com") is Role.ADMIN


@pytest.mark.parametrize(
    "entry",
    [
        "operator",  # no =
        "=ops@acme.com",
        "operator=",
        "boss=ops@acme.com",  # no role on either side
        "admin=viewer",  # a role on both sides
        "operator=ops",  # not an e-mail
        "operator=*",  # no bare wildcard: every account of every provider
        "operator=*@",
        "operator=*@*.acme.com",
        "operator=o*s@acme.com",
        "operator=a b@acme.com",
        "operator=group:",
        "operator=x@y@z",
    ],
)
def test_bad_entries_are_one_line_naming_the_entry(entry):
    with pytest.raises(ConfigError) as bad:
        parse_role_rules(f"viewer=*@acme.com,{entry}")
    message = str(bad.value)
    assert "\n" not in message and message.startswith("JOBDASH_ROLES: ")
    assert repr(entry) in message


def test_claims_become_an_identity_named_by_email():
    rules = parse_role_rules(EXAMPLE)
    claims = {"sub": "123", "email": "ops@acme.com", "groups": ["x"]}
    assert identity_from_claims(claims, rules) == Identity("ops@acme.com", Role.OPERATOR, "oidc")


def test_groups_come_from_the_configured_claim_as_a_list_or_one_string():
    rules = parse_role_rules("operator=group:oncall")
    assert identity_from_claims({"sub": "s", "roles": ["oncall"]}, rules, "roles").role is (
        Role.OPERATOR
    )
    assert identity_from_claims({"sub": "s", "roles": "oncall"}, rules, "roles").role is (
        Role.OPERATOR
    )
    assert identity_from_claims({"sub": "s", "groups": ["oncall"]}, rules, "roles") == NoRole(
        "s", "oidc"
    )


def test_unknown_people_get_no_role_but_keep_their_name_for_the_page():
    found = identity_from_claims({"sub": "9", "email": "eve@evil.test"}, parse_role_rules(EXAMPLE))
    assert found == NoRole("eve@evil.test", "oidc")
    assert identity_from_claims({"email": "ops@acme.com"}, ()) == NoRole("ops@acme.com", "oidc")


def test_an_unverified_email_matches_no_email_entry():
    rules = parse_role_rules(EXAMPLE)
    claims = {"sub": "1", "email": "alice@acme.com", "email_verified": False, "groups": []}
    assert identity_from_claims(claims, rules) == NoRole("alice@acme.com", "oidc")
    claims["groups"] = ["oncall"]
    assert identity_from_claims(claims, rules).role is Role.OPERATOR


def test_claims_naming_nobody_are_no_identity():
    assert identity_from_claims({}, parse_role_rules(EXAMPLE)) is None
    assert identity_from_claims({"email": "  ", "sub": 5}, ()) is None
