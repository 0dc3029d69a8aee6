"""The `jobdash` command: help everywhere, one-line errors for unusable databases."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jobdash.app.cli.main import build_parser


def _jobdash(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jobdash", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_top_level_help_lists_the_commands():
    result = _jobdash("--help")
    assert result.returncode == 0
    for name in ("migrate", "serve"):
        assert name in result.stdout


@pytest.mark.parametrize("command", _subcommands())
def test_every_command_has_help(command):
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([command, "--help"])
    assert exit_info.value.code == 0


def test_malformed_url_is_one_line_without_the_password():
    result = _jobdash("migrate", env={"JOBDASH_DATABASE_URL": "postgresql://u:hunter2@[oops"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "malformed database URL" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_names_host_port_and_database():
    result = _jobdash(
        "migrate", env={"JOBDASH_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:9/ledger"}
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "127.0.0.1:9/ledger" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_output_cut_short_by_a_closed_pipe_is_not_an_error(database_url):
    reader, writer = os.pipe()
    os.close(reader)  # like `jobdash … | head -0`
    with os.fdopen(writer, "w") as closed_pipe:
        result = subprocess.run(
            [sys.executable, "-m", "jobdash", "snapshot", "--json", "--database-url", database_url],
            stdout=closed_pipe,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert "Traceback" not in result.stderr
    assert result.returncode == 141


def test_serve_refuses_an_unmigrated_database(empty_database_url):
    result = _jobdash("serve", "--database-url", empty_database_url, "--port", "9")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "not migrated (procrastinate schema, 001_instrumentation.sql" in result.stderr
    assert "run `jobdash migrate` first" in result.stderr


def test_migrate_command_reports_what_it_did(empty_database_url):
    first = _jobdash("migrate", "--database-url", empty_database_url)
    assert first.returncode == 0, first.stderr
    assert "applied Procrastinate's schema" in first.stdout
    assert "001_instrumentation.sql" in first.stdout
    again = _jobdash("migrate", "--database-url", empty_database_url)
    assert again.returncode == 0
    assert again.stdout.strip() == "database is up to date"
