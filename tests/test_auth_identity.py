"""Roles, the permission table and `require`: the one check every action and route makes."""

from __future__ import annotations

import pytest

from jobdash.core.auth import ANONYMOUS, PERMISSIONS, Action, Identity, Role, allowed, require
from jobdash.core.errors import JobdashError, PermissionDenied, ReadOnlyError

VIEWER = Identity("vera", Role.VIEWER, "builtin")
OPERATOR = Identity("ops@acme.com", Role.OPERATOR, "oidc")
ADMIN = Identity("alice", Role.ADMIN, "builtin")


def test_roles_are_ordered_by_privilege_not_alphabet():
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert Role.ADMIN > Role.VIEWER and Role.ADMIN >= Role.ADMIN
    assert sorted([Role.ADMIN, Role.VIEWER, Role.OPERATOR]) == list(Role)
    assert max([Role.OPERATOR, Role.ADMIN, Role.VIEWER]) is Role.ADMIN
    assert Role.OPERATOR == "operator"  # a StrEnum: audit rows and settings hold plain text


def test_every_action_has_a_permission_and_the_table_is_as_documented():
    assert set(PERMISSIONS) == set(Action)
    by_role = {role: {a for a, p in PERMISSIONS.items() if p.role is role} for role in Role}
    assert by_role[Role.VIEWER] == {Action.READ, Action.EXPORT_CSV}
    assert {
        Action.PURGE_ARCHIVE,
        Action.UNINSTALL,
        Action.CHANGE_SETTINGS,
        Action.VIEW_UNREDACTED_ARGS,
    } == by_role[Role.ADMIN]
    assert {
        "retry",
        "delete",
        "restore",
        "cancel",
        "abort",
        "pause_queue",
        "resume_queue",
        "run_now",
        "run_job_now",
        "reschedule",
        "enable_periodic",
        "disable_periodic",
        "retry_stalled",
        "test_alert",
    } == by_role[Role.OPERATOR]
    assert not any(PERMISSIONS[a].writes for a in by_role[Role.VIEWER])
    assert all(p.writes for a, p in PERMISSIONS.items() if p.role is not Role.VIEWER)


@pytest.mark.parametrize("action", list(Action))
def test_each_role_may_do_exactly_what_the_table_says(action):
    needed = PERMISSIONS[action].role
    for identity in (VIEWER, OPERATOR, ADMIN):
        if identity.role >= needed:
            assert require(identity, action, read_only=False) is identity
        else:
            with pytest.raises(PermissionDenied):
                require(identity, action, read_only=False)


def test_the_refusal_is_one_line_saying_what_is_needed():
    with pytest.raises(PermissionDenied) as refused:
        require(VIEWER, Action.RETRY, read_only=False)
    assert str(refused.value) == "operator role needed to retry jobs; you are viewer"
    assert isinstance(refused.value, JobdashError)
    with pytest.raises(PermissionDenied, match=r"^admin role needed to purge the archive; you"):
        require(OPERATOR, "purge_archive", read_only=False)


def test_nobody_signed_in_is_refused_everything_even_reading():
    for action in Action:
        with pytest.raises(PermissionDenied, match="^sign in to "):
            require(None, action, read_only=False)


def test_read_only_beats_every_role_for_writes_but_not_for_reads():
    for identity in (ADMIN, ANONYMOUS, OPERATOR):
        with pytest.raises(ReadOnlyError, match="JOBDASH_READ_ONLY=1"):
            require(identity, Action.DELETE, read_only=True)
    assert require(VIEWER, Action.EXPORT_CSV, read_only=True) is VIEWER
    assert require(ADMIN, Action.READ, read_only=True) is ADMIN


def test_an_unknown_action_is_an_error_never_a_permission():
    with pytest.raises(ValueError):
        require(ADMIN, "retyr", read_only=False)


def test_allowed_mirrors_require_for_hiding_buttons():
    assert allowed(OPERATOR, Action.RETRY, read_only=False)
    assert not allowed(VIEWER, Action.RETRY, read_only=False)
    assert not allowed(ADMIN, Action.RETRY, read_only=True)
    assert not allowed(None, Action.READ, read_only=False)


def test_anonymous_is_what_a_dashboard_without_sign_in_runs_as():
    assert ANONYMOUS.source == "anonymous" and ANONYMOUS.role is Role.ADMIN
