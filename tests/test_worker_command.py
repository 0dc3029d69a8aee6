"""`jobdash worker`: loading the App, clear errors, and a real run stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from jobdash.app.cli.main import main
from jobdash.core.app_loader import load_app, split_app_path
from jobdash.core.errors import AppLoadError
from tests.test_instrumentation_support import defer, make_app, query_one


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("nosuch.module:app", "module 'nosuch.module' not found"),
        (
            "jobdash.jobs.demo.app:nosuch",
            "module 'jobdash.jobs.demo.app' has no attribute 'nosuch'",
        ),
        (
            "jobdash.jobs.demo.app:QUEUES",
            "jobdash.jobs.demo.app:QUEUES is a tuple, not a procrastinate App",
        ),
        ("not a path", "'not a path' is not of the form dotted.module:app"),
        ("jobdash.jobs.demo.app:", "is not of the form dotted.module:app"),
    ],
)
def test_bad_app_paths_give_one_clear_line(path, expected):
    with pytest.raises(AppLoadError) as info:
        load_app(path)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_app_paths_in_both_notations():
    from jobdash.jobs.demo.app import app

    assert load_app("jobdash.jobs.demo.app:app") is app
    assert load_app("jobdash.jobs.demo.app.app") is app
    assert split_app_path("a.b:c.d") == ("a.b", "c.d")


def test_worker_command_reports_a_missing_module_without_traceback(capsys):
    assert main(["worker", "--app", "nosuch.module:app"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "jobdash worker: error: --app: module 'nosuch.module' not found"


def test_worker_command_rejects_bad_numbers(capsys):
    with pytest.raises(SystemExit) as info:
        main(["worker", "--concurrency", "0"])
    assert info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["worker", "demo"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: jobdash {command}" in out
    assert "--database-url" in out


def test_worker_runs_the_demo_app_instrumented_and_stops_on_sigterm(database_url):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobdash",
            "worker",
            "--database-url",
            database_url,
            "--queues",
            "default",
            "--concurrency",
            "2",
            "--name",
            "cmd-test",
            "--heartbeat-interval",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        app = make_app(database_url)  # defers by task name, as any client of the queue does
        ok = defer(app, "shop.resize_image", image_id=1, width=64)
        bad = defer(app, "shop.resize_image", image_id=2, width=64, fmt="bmp")

        def settled() -> bool:
            (done,) = query_one(
                database_url,
                "select count(*) = 2 from procrastinate_jobs where id = any(%s)"
                " and status in ('succeeded', 'failed')",
                ([ok, bad],),
            )
            (registered,) = query_one(
                database_url, "select count(*) = 1 from jobdash_workers where stopped_at is null"
            )
            return done and registered

        deadline = time.monotonic() + 20
        while not settled():
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "worker did not process the jobs"
            time.sleep(0.05)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read()
    assert "jobdash worker: stopped" in output

    assert query_one(
        database_url, "select status::text from procrastinate_jobs where id = %s", (ok,)
    ) == ("succeeded",)
    assert query_one(
        database_url,
        "select exception_type, message, will_retry from jobdash_job_errors where job_id = %s",
        (bad,),
    ) == ("builtins.ValueError", "unsupported image format: bmp", False)
    name, queues, concurrency, pid, stopped = query_one(
        database_url,
        "select worker_name, queues, concurrency, pid, stopped_at is not null from jobdash_workers",
    )
    assert (name, concurrency, pid, stopped) == ("cmd-test", 2, process.pid, True)
    assert queues == ["default", "jobdash"]  # the maintenance queue is added
    (published,) = query_one(
        database_url,
        "select count(*) from jobdash_periodic_tasks"
        " where task_name like 'shop.%%'",
    )
    assert published == 5
    assert not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() == "zombie"
    assert os.getpid() != process.pid


def test_worker_refuses_a_database_without_procrastinate_schema(empty_database_url, capsys):
    assert main(["worker", "--database-url", empty_database_url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jobdash worker: error: database ")
    assert err.endswith("has no Procrastinate schema; run `jobdash migrate` first")
