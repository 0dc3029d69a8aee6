"""Who is asking, what they may do, and the one check every action and route makes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from jobdash.core.errors import PermissionDenied, ReadOnlyError

Source = Literal["oidc", "builtin", "cli", "anonymous"]


class Role(StrEnum):
    """viewer < operator < admin: each role may do everything the roles below it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    # str's own ordering would put "admin" first: compare by rank instead.
    def __lt__(self, other: object) -> bool:
        return self.rank < Role(other).rank if isinstance(other, str) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= Role(other).rank if isinstance(other, str) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > Role(other).rank if isinstance(other, str) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= Role(other).rank if isinstance(other, str) else NotImplemented


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
ROLE_NAMES = ", ".join(role.value for role in Role)


def parse_role(text: str) -> Role | None:
    """The role named by `text` (any case), or None."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        return None


@dataclass(frozen=True)
class Identity:
    """A person (or the CLI, or nobody in particular when sign-in is off) with a role.

    `name` is what the audit log records as the actor: the e-mail for an identity provider,
    the user name for built-in users, the OS user for the CLI.
    """

    name: str
    role: Role
    source: Source


@dataclass(frozen=True)
class NoRole:
    """Someone signed in whom no rule gives a role: they get a "not allowed" page, nothing else."""

    name: str
    source: Source


# Who everyone is when no sign-in is configured: only possible on a loopback address, or when
# `serve` was told --insecure-no-auth / --read-only explicitly. The audit log then says the
# action came from the dashboard, as it cannot say from whom.
ANONYMOUS = Identity(name="dashboard", role=Role.ADMIN, source="anonymous")


class Action(StrEnum):
    """Everything a role may or may not do. Values match the audit log's action names."""

    READ = "read"
    EXPORT_CSV = "export_csv"
    RETRY = "retry"
    DELETE = "delete"
    RESTORE = "restore"
    CANCEL = "cancel"
    ABORT = "abort"
    PAUSE_QUEUE = "pause_queue"
    RESUME_QUEUE = "resume_queue"
    RUN_NOW = "run_now"
    RUN_JOB_NOW = "run_job_now"
    RESCHEDULE = "reschedule"
    ENABLE_PERIODIC = "enable_periodic"
    DISABLE_PERIODIC = "disable_periodic"
    RETRY_STALLED = "retry_stalled"
    TEST_ALERT = "test_alert"
    PURGE_ARCHIVE = "purge_archive"
    VIEW_UNREDACTED_ARGS = "view_unredacted_args"
    UNINSTALL = "uninstall"
    CHANGE_SETTINGS = "change_settings"


@dataclass(frozen=True)
class Permission:
    role: Role  # the least role that may do it
    words: str  # "retry jobs": completes "operator role needed to ..."
    writes: bool  # refused by JOBDASH_READ_ONLY=1, whatever the role


def _permissions() -> Mapping[Action, Permission]:
    viewer, operator, admin = Role.VIEWER, Role.OPERATOR, Role.ADMIN
    table = {
        Action.READ: Permission(viewer, "view the dashboard", writes=False),
        Action.EXPORT_CSV: Permission(viewer, "download CSV exports", writes=False),
        Action.RETRY: Permission(operator, "retry jobs", writes=True),
        Action.DELETE: Permission(operator, "delete jobs", writes=True),
        Action.RESTORE: Permission(operator, "restore deleted jobs", writes=True),
        Action.CANCEL: Permission(operator, "cancel jobs", writes=True),
        Action.ABORT: Permission(operator, "abort running jobs", writes=True),
        Action.PAUSE_QUEUE: Permission(operator, "pause queues", writes=True),
        Action.RESUME_QUEUE: Permission(operator, "resume queues", writes=True),
        Action.RUN_NOW: Permission(operator, "run periodic tasks now", writes=True),
        Action.RUN_JOB_NOW: Permission(operator, "run scheduled jobs now", writes=True),
        Action.RESCHEDULE: Permission(operator, "reschedule jobs", writes=True),
        Action.ENABLE_PERIODIC: Permission(operator, "enable periodic tasks", writes=True),
        Action.DISABLE_PERIODIC: Permission(operator, "disable periodic tasks", writes=True),
        Action.RETRY_STALLED: Permission(operator, "retry stalled jobs", writes=True),
        Action.TEST_ALERT: Permission(operator, "send test alerts", writes=True),
        Action.PURGE_ARCHIVE: Permission(admin, "purge the archive", writes=True),
        # A read, but it writes an audit row and shows what JOBDASH_REDACT_ARGS hides: read-only
        # mode refuses it too (a --read-only dashboard without sign-in runs everyone as admin).
        Action.VIEW_UNREDACTED_ARGS: Permission(admin, "view unredacted args", writes=True),
        Action.UNINSTALL: Permission(admin, "uninstall Jobdash's tables", writes=True),
        Action.CHANGE_SETTINGS: Permission(admin, "change settings", writes=True),
    }
    assert set(table) == set(Action), "every action needs a permission"
    return MappingProxyType(table)


PERMISSIONS: Mapping[Action, Permission] = _permissions()


def allowed(identity: Identity | None, action: Action | str, *, read_only: bool) -> bool:
    """Whether `require` would let this through (for hiding buttons; the check stays in require)."""
    try:
        require(identity, action, read_only=read_only)
    except (PermissionDenied, ReadOnlyError):
        return False
    return True


def require(identity: Identity | None, action: Action | str, *, read_only: bool) -> Identity:
    """Return `identity` if it may do `action`; raise ReadOnlyError or PermissionDenied if not.

    Read-only mode comes first and refuses every write, even an admin's. An action name that
    is not in the table raises ValueError: a typo must never be a permission.
    """
    permission = PERMISSIONS[Action(action)]
    if permission.writes and read_only:
        raise ReadOnlyError("read-only mode (JOBDASH_READ_ONLY=1): actions are disabled")
    if identity is None:
        raise PermissionDenied(f"sign in to {permission.words}")
    if identity.role < permission.role:
        raise PermissionDenied(
            f"{permission.role} role needed to {permission.words}; you are {identity.role}"
        )
    return identity
