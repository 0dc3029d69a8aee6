"""Sign-in and roles, without Streamlit: identities, the permission table, role rules from
JOBDASH_ROLES, built-in users and their session cookie, and the exposure check of `serve`.

The Streamlit-facing parts are app/ui/auth.py (pages) and app/web/auth_routes.py (HTTP).
"""

from jobdash.core.auth.identity import (
    ANONYMOUS,
    PERMISSIONS,
    Action,
    Identity,
    NoRole,
    Permission,
    Role,
    allowed,
    require,
)

__all__ = [
    "ANONYMOUS",
    "PERMISSIONS",
    "Action",
    "Identity",
    "NoRole",
    "Permission",
    "Role",
    "allowed",
    "require",
]
