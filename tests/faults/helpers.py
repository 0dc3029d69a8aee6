"""What the fault tests share: a subprocess with its output in files, polling, the test App's
jobs and the checks that no job was lost or run twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector

from tests.faults.fault_app import FAULT_RUNS_TABLE

WORKSPACE = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(every)


def query(url: str, sql: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(url: str, sql: str, params: Any = None) -> Any:
    return query(url, sql, params)[0][0]


class Process:
    """A child process (a worker, a dashboard run), its output in files (a pipe would fill)."""

    def __init__(self, command: list[str], folder: Path, name: str, **env: str) -> None:
        self.out = folder / f"{name}.out"
        with self.out.open("w") as out:
            self.popen = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=WORKSPACE,
                env={**os.environ, "PYTHONPATH": str(WORKSPACE), **env},
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.out.read_text()

    def stop(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait()


def fault_worker(url: str, folder: Path, concurrency: int = 2, **env: str) -> Process:
    """`jobdash worker` on the fault App's queue, heartbeats every second."""
    command = [sys.executable, "-m", "jobdash", "worker", "--database-url", url]
    command += ["--app", "tests.faults.fault_app:app", "--queues", "faults"]
    command += ["--heartbeat-interval", "1", "--concurrency", str(concurrency)]
    return Process(command, folder, "worker", **env)


def prepare_fault_runs(url: str) -> None:
    query_none(url, FAULT_RUNS_TABLE)


def query_none(url: str, sql: str, params: Any = None) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql, params)


def defer_runs(url: str, numbers: range, seconds: float = 0.2, fail_every: int = 0) -> list[int]:
    app = App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=1))
    with app.open():
        task = app.configure_task("record_run", queue="faults")
        return [task.defer(n=n, seconds=seconds, fail_every=fail_every) for n in numbers]


@dataclass(frozen=True)
class RunLedger:
    """What happened to the jobs, read from the database."""

    statuses: dict[str, int]
    runs: int
    distinct_runs: int
    jobs_without_run: int
    runs_without_job: int
    double_run_errors: int

    @classmethod
    def read(cls, url: str, job_ids: list[int]) -> RunLedger:
        statuses = dict(
            query(
                url,
                "select status::text, count(*) from procrastinate_jobs where id = any(%s)"
                " group by 1",
                (job_ids,),
            )
        )
        runs, distinct = query(url, "select count(*), count(distinct job_id) from fault_runs")[0]
        missing = scalar(
            url,
            "select count(*) from unnest(%s::bigint[]) j(id)"
            " where not exists (select from fault_runs r where r.job_id = j.id)",
            (job_ids,),
        )
        strays = scalar(
            url, "select count(*) from fault_runs where not (job_id = any(%s))", (job_ids,)
        )
        doubles = scalar(
            url,
            "select count(*) from jobdash_job_errors where exception_type like '%%UniqueViolation'",
        )
        return cls(statuses, runs, distinct, missing, strays, doubles)

    def assert_each_ran_exactly_once(self, jobs: int) -> None:
        assert self.statuses == {"succeeded": jobs}, self
        assert self.runs == self.distinct_runs == jobs, self
        assert self.jobs_without_run == 0 and self.runs_without_job == 0, self
        assert self.double_run_errors == 0, self
