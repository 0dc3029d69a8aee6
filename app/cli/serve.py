"""`jobdash serve`: the Streamlit dashboard."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from jobdash.app.cli.common import add_command, add_listen_arguments, database_url
from jobdash.app.web import SERVER_SCRIPT
from jobdash.app.web.auth_routes import check_serve_exposure
from jobdash.app.web.guard import ANY_ADDRESS, allowed_hosts, host_pattern, streamlit_host_names
from jobdash.core.errors import CommandError
from jobdash.core.schema import pending_migrations
from jobdash.core.settings import load_settings

# Every Streamlit option the product relies on, as flags: they win over any config file
# (~/.streamlit, the current directory's .streamlit/) and STREAMLIT_* variable, so the
# dashboard behaves the same wherever it is started.
STREAMLIT_OPTIONS = {
    "server.headless": "true",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "server.allowRunOnSave": "false",
    "server.baseUrlPath": "",
    "server.enableCORS": "true",
    "server.enableXsrfProtection": "true",
    "server.xsrfCookieSameSite": "lax",
    "server.enableStaticServing": "false",
    "server.enableAgentApi": "false",
    "server.showEmailPrompt": "false",
    "global.developmentMode": "false",
    "browser.gatherUsageStats": "false",
    # No "Clear caches" / "Rerun" menu for viewers.
    "client.toolbarMode": "viewer",
    # Our own "Download CSV" buttons neutralise spreadsheet formulas; the grid's built-in one
    # does not.
    "client.disableDataExport": "true",
    # Uncaught exceptions: type only in the browser (messages and tracebacks may carry job
    # data), everything in the server log; and no links sending the error to search engines.
    "client.showErrorDetails": "type",
    "client.showErrorLinks": "false",
    # Streamlit runs a full gc.collect(2) after every script run, each fragment tick included:
    # with pandas, pyarrow and altair loaded that was two thirds of the server's CPU per viewer
    # (docs/benchmarks-viewers.md). Python's own collector still runs; memory stays flat.
    "runner.postScriptGC": "false",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "serve",
        run,
        help="serve the dashboard",
        description="Serve the Streamlit dashboard (binds 127.0.0.1 unless --host says "
        "otherwise; answers only requests for the host names in JOBDASH_ALLOWED_HOSTS, by "
        "default the bound address and localhost).",
    )
    add_listen_arguments(parser, host_help="address to bind", port_help="port")
    parser.add_argument(
        "--app",
        help="dotted.path:app of a Procrastinate App whose periodic tasks the scheduler shows",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="hide every action and refuse every write (as JOBDASH_READ_ONLY=1)",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve a non-loopback address without sign-in: anyone who reaches it may act on "
        "every job (without it, serve refuses to)",
    )


def streamlit_command(
    host: str, port: int, hosts: Sequence[str], script: Path = SERVER_SCRIPT
) -> list[str]:
    """`streamlit run` of the dashboard server with every option it relies on."""
    options = {"server.address": host, "server.port": str(port), **STREAMLIT_OPTIONS}
    return [
        sys.executable, "-m", "streamlit", "run", str(script),
        *(f"--{name}={value}" for name, value in options.items()),
        # Streamlit checks these on the websocket only; app/web/guard.py checks every request.
        *(f"--server.allowedHosts={name}" for name in streamlit_host_names(hosts)),
    ]  # fmt: skip


def dashboard_environment(url: str, app_path: str | None, hosts: Sequence[str]) -> dict[str, str]:
    env = dict(os.environ, JOBDASH_DATABASE_URL=url, JOBDASH_ALLOWED_HOSTS=",".join(hosts))
    if app_path:
        env["JOBDASH_APP"] = app_path
    return env


def browse_url(host: str, port: int, hosts: Sequence[str]) -> str:
    """The address to open: the bound one, or for every interface the first allowed name."""
    name = host_pattern(host)
    if name in ANY_ADDRESS:
        name = next((h for h in hosts if not h.startswith("*")), "localhost")
    return f"http://{name}:{port}"


def access_note(host: str, hosts: Sequence[str]) -> str | None:
    """What to tell the operator who binds every interface with only the local names allowed."""
    if host_pattern(host) in ANY_ADDRESS and load_settings().allowed_hosts is None:
        return (
            f"note: only requests for {', '.join(hosts)} are answered; set "
            "JOBDASH_ALLOWED_HOSTS to the names clients use (e.g. dash.example.com)"
        )
    return None


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    pending = pending_migrations(url)
    if pending:
        raise CommandError(
            f"the database is not migrated ({', '.join(pending)} pending): "
            "run `jobdash migrate` first"
        )
    if args.read_only:
        os.environ["JOBDASH_READ_ONLY"] = "1"  # the dashboard's child process inherits it
    # Safe by default: a network address needs sign-in, --read-only or --insecure-no-auth.
    exposure = check_serve_exposure(
        args.host,
        read_only=load_settings().read_only,
        insecure_no_auth=args.insecure_no_auth,
    )
    hosts = allowed_hosts(args.host)
    print(f"Jobdash dashboard: {browse_url(args.host, args.port, hosts)}", flush=True)
    if exposure:
        print(f"jobdash serve: {exposure}", file=sys.stderr, flush=True)
    if note := access_note(args.host, hosts):
        print(f"jobdash serve: {note}", file=sys.stderr, flush=True)
    process = subprocess.Popen(
        streamlit_command(args.host, args.port, hosts),
        env=dashboard_environment(url, args.app, hosts),
    )
    try:
        return process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
