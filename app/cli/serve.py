"""`jobdash serve`: the Streamlit dashboard."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from jobdash.app.cli.common import add_database_argument, database_url
from jobdash.app.web import SERVER_SCRIPT
from jobdash.core.errors import CommandError
from jobdash.core.migrate import pending_migrations


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the dashboard",
        description="Serve the Streamlit dashboard (binds 127.0.0.1 unless --host says otherwise).",
    )
    add_database_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument(
        "--app",
        help="dotted.path:app of a Procrastinate App whose periodic tasks the scheduler shows",
    )
    parser.set_defaults(func=run)


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(SERVER_SCRIPT),
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
    ]


def dashboard_environment(url: str, app_path: str | None) -> dict[str, str]:
    env = dict(os.environ, JOBDASH_DATABASE_URL=url)
    if app_path:
        env["JOBDASH_APP"] = app_path
    return env


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    pending = pending_migrations(url)
    if pending:
        raise CommandError(
            f"the database is not migrated ({', '.join(pending)} pending): "
            "run `jobdash migrate` first"
        )
    print(f"Jobdash dashboard: http://{args.host}:{args.port}", flush=True)
    process = subprocess.Popen(
        streamlit_command(args.host, args.port), env=dashboard_environment(url, args.app)
    )
    try:
        return process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
