"""Built-in sign-in over HTTP, and who a request beside the app comes from.

Routes (for st.App(routes=...)): GET/POST /signin, GET/POST /signout. Not /auth/login:
Streamlit's own st.login route lives there. The forms need no JavaScript; every value shown is
HTML-escaped; each POST carries a CSRF token bound to a cookie (HMAC under the cookie secret).

`identity_from_request(request)` is what custom routes (the CSV export, later /metrics) call:
the built-in session cookie, else Streamlit's `_streamlit_user` cookie mapped through
JOBDASH_ROLES, else nobody (or ANONYMOUS when no sign-in is configured at all).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import html
import secrets
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from jobdash.core.auth.exposure import check_exposure
from jobdash.core.auth.identity import Identity
from jobdash.core.auth.oidc import read_streamlit_user_cookie, streamlit_auth_secrets
from jobdash.core.auth.service import AuthService, build_auth_service
from jobdash.core.auth.sessions import SESSION_COOKIE
from jobdash.core.errors import ConfigError, describe_error
from jobdash.core.settings import load_auth_settings

SIGN_IN_PATH = "/signin"
SIGN_OUT_PATH = "/signout"
CSRF_COOKIE = "jobdash_csrf"
CSRF_FIELD = "csrf"
MAX_FORM_BYTES = 8192

_service: AuthService | None = None
_service_lock = threading.Lock()


def _streamlit_facts() -> tuple[str | None, str | None, str | None]:
    """(bound address, the cookie secret if [auth] exists, the cookie secret if set at all).

    Streamlit's cookie secret is [auth].cookie_secret, else server.cookieSecret; without
    either it is random per process, which must not sign anything meant to last.
    """
    from streamlit import config
    from streamlit.auth_util import get_secrets_auth_section
    from streamlit.web.server.server_util import get_cookie_secret

    host = config.get_option("server.address")
    oidc = bool(get_secrets_auth_section())
    explicit = oidc or config.is_manually_set("server.cookieSecret")
    secret = get_cookie_secret() if explicit else None
    return host, secret if oidc else None, secret


def _secrets_files_auth() -> dict[str, object] | None:
    """The [auth] section of Streamlit's secrets files, read without Streamlit's loader (it
    also copies root-level secrets into os.environ, which `serve` would pass on)."""
    import tomllib

    from streamlit import config

    for name in config.get_option("secrets.files") or []:
        path = Path(name)
        files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        for file in files:
            try:
                auth = tomllib.loads(file.read_text("utf-8")).get("auth")
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if isinstance(auth, dict):
                return auth
    return None


def check_serve_exposure(host: str, *, read_only: bool, insecure_no_auth: bool) -> str:
    """For `jobdash serve`, before it starts Streamlit: the one line to print about sign-in,
    or ConfigError (one line) when the settings cannot work or the address needs sign-in."""
    from streamlit import config

    settings = load_auth_settings()
    file_auth = _secrets_files_auth()
    oidc = streamlit_auth_secrets(settings) is not None or file_auth is not None
    fallback = (file_auth or {}).get("cookie_secret") or (
        config.get_option("server.cookieSecret")
        if config.is_manually_set("server.cookieSecret")
        else None
    )
    service = build_auth_service(
        settings,
        host=host,
        # Only whether it is configured matters here; the dashboard reads the real secret.
        oidc_secret="configured" if oidc else None,
        fallback_secret=fallback if isinstance(fallback, str) else None,
    )
    return check_exposure(
        host, service.sign_in, read_only=read_only, insecure_no_auth=insecure_no_auth
    )


def current_auth() -> AuthService:
    """This process's AuthService, built on first use (ConfigError, one line, until it can be)."""
    global _service
    with _service_lock:
        if _service is None:
            host, oidc_secret, fallback = _streamlit_facts()
            _service = build_auth_service(
                load_auth_settings(), host=host, oidc_secret=oidc_secret, fallback_secret=fallback
            )
        return _service


def reset_auth() -> None:
    """Forget the process's AuthService: the next request builds it from the settings again
    (tests, which change the settings between cases)."""
    global _service
    with _service_lock:
        _service = None


def identity_from_request(request: Request, service: AuthService | None = None) -> Identity | None:
    """Who sent `request`, or None (nobody signed in, or signed in without a role)."""
    service = service or current_auth()
    if service.builtin:
        identity = service.read_session(request.cookies.get(SESSION_COOKIE))
        if identity is not None:
            return identity
    if service.oidc_secret is not None:
        claims = read_streamlit_user_cookie(
            request.cookies, service.oidc_secret, request.headers.get("host")
        )
        found = service.identity_from_claims(claims) if claims else None
        if isinstance(found, Identity):
            return found
    return service.anonymous()


def safe_next(value: str | None) -> str:
    """`value` if it is a path on this site, else "/": never an open redirect."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return "/"
    # Browsers read "\" as "/" ("/\evil.test") and drop tabs and newlines ("/\t/evil.test").
    if "\\" in value or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


def sign_in_url(next_path: str | None = None) -> str:
    """The sign-in page, coming back to `next_path` (a path on this site) afterwards."""
    target = safe_next(next_path)
    return SIGN_IN_PATH + (f"?{urlencode({'next': target})}" if target != "/" else "")


def _csrf_tag(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), b"jobdash.csrf\0" + token.encode(), hashlib.sha256).hexdigest()


def _csrf_ok(service: AuthService, request: Request, form: dict[str, str]) -> bool:
    assert service.secret is not None
    token, tag = request.cookies.get(CSRF_COOKIE, ""), form.get(CSRF_FIELD, "")
    return bool(token and tag) and hmac.compare_digest(_csrf_tag(service.secret, token), tag)


def _secure(service: AuthService, request: Request) -> bool:
    if service.cookie_secure is not None:
        return service.cookie_secure
    return request.url.scheme == "https"


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f6f7f9;color:#1f2328;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:2rem;width:20rem}
h1{font-size:1.25rem;margin:0 0 1rem}label{display:block;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;
border:1px solid #d0d7de;border-radius:6px;font-size:1rem}
button{margin-top:1.25rem;width:100%;padding:.6rem;border:0;border-radius:6px;
background:#1f6feb;color:#fff;font-size:1rem;cursor:pointer}
p.problem{color:#b42318;margin:0 0 .5rem}
""".strip()

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _page(title: str, body: str, status: int) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · Jobdash</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def _form_page(
    service: AuthService,
    request: Request,
    *,
    action: str,
    title: str,
    fields: str,
    button: str,
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    assert service.secret is not None
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    problem_html = f'<p class="problem" role="alert">{html.escape(problem)}</p>' if problem else ""
    body = (
        f'{problem_html}<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="{CSRF_FIELD}" '
        f'value="{html.escape(_csrf_tag(service.secret, token))}">'
        f'{fields}<button type="submit">{html.escape(button)}</button></form>'
    )
    response = _page(title, body, status)
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(service, request),
        path="/",
    )
    return response


def _sign_in_form(
    service: AuthService,
    request: Request,
    next_path: str,
    name: str = "",
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    fields = (
        f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
        '<label for="name">User name</label>'
        f'<input type="text" id="name" name="name" value="{html.escape(name)}" '
        'autocomplete="username" autocapitalize="none" required autofocus>'
        '<label for="password">Password</label>'
        '<input type="password" id="password" name="password" '
        'autocomplete="current-password" required>'
    )
    return _form_page(
        service,
        request,
        action=SIGN_IN_PATH,
        title="Sign in to Jobdash",
        fields=fields,
        button="Sign in",
        problem=problem,
        status=status,
    )


async def _read_form(request: Request) -> dict[str, str] | Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in {"", "application/x-www-form-urlencoded"}:
        return PlainTextResponse("expected a form\n", status_code=415, headers=_HEADERS)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return PlainTextResponse("form too large\n", status_code=413, headers=_HEADERS)
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=10, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return PlainTextResponse("unreadable form\n", status_code=400, headers=_HEADERS)
    return {key: values[0] for key, values in parsed.items()}


def _unavailable(exc: ConfigError) -> Response:
    return PlainTextResponse(
        f"sign-in unavailable: {describe_error(exc)}\n", status_code=503, headers=_HEADERS
    )


def _not_configured() -> Response:
    return PlainTextResponse(
        "built-in sign-in is not configured (JOBDASH_USERS)\n", status_code=404, headers=_HEADERS
    )


def _sign_out_form(
    service: AuthService, request: Request, problem: str | None = None, status: int = 200
) -> HTMLResponse:
    return _form_page(
        service,
        request,
        action=SIGN_OUT_PATH,
        title="Sign out",
        fields="",
        button="Sign out",
        problem=problem,
        status=status,
    )


def _session_cookie_set(
    response: Response, service: AuthService, request: Request, identity: Identity
) -> None:
    assert service.sessions is not None
    response.set_cookie(
        SESSION_COOKIE,
        service.issue_session(identity),
        max_age=service.sessions.max_age_s,
        httponly=True,
        samesite="lax",
        secure=_secure(service, request),
        path="/",
    )


async def _sign_in_page(service: AuthService, request: Request) -> Response:
    return _sign_in_form(service, request, safe_next(request.query_params.get("next")))


async def _sign_in(service: AuthService, request: Request) -> Response:
    form = await _read_form(request)
    if isinstance(form, Response):
        return form
    next_path = safe_next(form.get("next"))
    name = form.get("name", "").strip()
    if not _csrf_ok(service, request, form):
        problem = "the sign-in form had expired: please sign in again"
        return _sign_in_form(service, request, next_path, name, problem, 403)
    address = request.client.host if request.client else None
    try:
        outcome = await run_in_threadpool(
            service.attempt_sign_in, name, form.get("password", ""), address
        )
    except ConfigError as exc:  # the users file turned unreadable or invalid
        return _unavailable(exc)
    if outcome.identity is None:
        return _sign_in_form(service, request, next_path, name, outcome.problem, outcome.status)
    response = RedirectResponse(next_path, status_code=303, headers=_HEADERS)
    _session_cookie_set(response, service, request, outcome.identity)
    return response


async def _sign_out_page(service: AuthService, request: Request) -> Response:
    return _sign_out_form(service, request)


async def _sign_out(service: AuthService, request: Request) -> Response:
    form = await _read_form(request)
    if isinstance(form, Response):
        return form
    if not _csrf_ok(service, request, form):
        problem = "the sign-out form had expired: press the button again"
        return _sign_out_form(service, request, problem, 403)
    response = RedirectResponse(SIGN_IN_PATH, status_code=303, headers=_HEADERS)
    secure = _secure(service, request)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
    return response


Handler = Callable[[AuthService, Request], Awaitable[Response]]


def _endpoint(
    get_service: Callable[[], AuthService], handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """`handler` as a route's endpoint: it runs only when built-in sign-in is configured (503
    when the settings cannot be read, 404 when there is no JOBDASH_USERS)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            service = get_service()
        except ConfigError as exc:
            return _unavailable(exc)
        if not service.builtin:
            return _not_configured()
        return await handler(service, request)

    return endpoint


def auth_routes(get_service: Callable[[], AuthService] = current_auth) -> list[Route]:
    """The sign-in and sign-out routes, for `get_service()`'s AuthService."""
    return [
        Route(SIGN_IN_PATH, _endpoint(get_service, _sign_in_page), methods=["GET"]),
        Route(SIGN_IN_PATH, _endpoint(get_service, _sign_in), methods=["POST"]),
        Route(SIGN_OUT_PATH, _endpoint(get_service, _sign_out_page), methods=["GET"]),
        Route(SIGN_OUT_PATH, _endpoint(get_service, _sign_out), methods=["POST"]),
    ]


AUTH_ROUTES = auth_routes()
