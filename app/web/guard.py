"""Which requests the dashboard answers: only those addressed to a host name it is known by.

Without it, a page on any web site can reach a dashboard bound to 127.0.0.1 through DNS
rebinding (its own name resolving to 127.0.0.1): the browser sends that foreign name as the
Host, Streamlit's websocket accepts it, and the page can read the panels, download the
export and press the action buttons. So every request (pages, /_stcore/*, static files, our
routes, the websocket upgrade) whose Host is not on the allow-list gets 400, and a websocket
opened by a page of another origin is refused too.

The allow-list is JOBDASH_ALLOWED_HOSTS, or by default the address `serve` binds plus
localhost, 127.0.0.1 and [::1]. `serve` also passes it to Streamlit's own
`server.allowedHosts` (which checks only the websocket) as a second layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from jobdash.core.settings import load_settings

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Binding these means "every interface": no single name to add, clients must be listed.
ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def host_pattern(address: str) -> str:
    """`address` as it appears in a Host header (IPv6 in brackets), lower case."""
    address = address.strip().lower()
    if ":" in address and not address.startswith("["):
        return f"[{address}]"
    return address


def default_allowed_hosts(bind_address: str | None) -> tuple[str, ...]:
    bound = host_pattern(bind_address or "")
    extra = () if bound in ANY_ADDRESS or bound in LOCAL_HOSTS else (bound,)
    return extra + LOCAL_HOSTS


def allowed_hosts(bind_address: str | None) -> tuple[str, ...]:
    """JOBDASH_ALLOWED_HOSTS, or the default for a server bound to `bind_address`."""
    return load_settings().allowed_hosts or default_allowed_hosts(bind_address)


def streamlit_host_names(hosts: Sequence[str]) -> list[str]:
    """The same list in `server.allowedHosts` form (Streamlit compares IPv6 without brackets)."""
    return [host.strip("[]") for host in hosts]


def host_allowed(host: str, hosts: Sequence[str]) -> bool:
    """Whether a host name (no port) matches the allow-list (`*.example.com` covers subdomains)."""
    host = host_pattern(host)
    return any(
        host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))
        for pattern in hosts
    )


def origin_allowed(origin: str | None, hosts: Sequence[str]) -> bool:
    """A websocket's Origin: absent (not a browser), or a page served under an allowed name."""
    if origin is None:
        return True
    try:
        name = urlsplit(origin).hostname
    except ValueError:
        return False
    if not name:
        return False
    return host_allowed(name, hosts)


class WebsocketOriginGuard:
    """Refuse (403) a websocket whose Origin is not one of the allowed host names.

    Streamlit accepts an Origin equal to the Host header, which is exactly what a rebinding
    page sends; the Host check already stops that, this one does not depend on it.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed_hosts = tuple(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            origin = next(
                (value.decode("latin-1") for key, value in scope["headers"] if key == b"origin"),
                None,
            )
            if not origin_allowed(origin, self.allowed_hosts):
                await PlainTextResponse("origin not allowed\n", status_code=403)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def guard_middleware(hosts: Sequence[str]) -> list[Middleware]:
    """The middleware of st.App: outermost, so it sees every request and the websocket."""
    return [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts), www_redirect=False),
        Middleware(WebsocketOriginGuard, allowed_hosts=list(hosts)),
    ]
