"""`jobdash retry / delete / restore / export failed`."""

from __future__ import annotations

import argparse
import csv

from jobdash.app.cli.main import build_parser, main
from tests.actions_helpers import job_status, make_failed_jobs


def test_cli_retry_delete_restore(database_url, conn, capsys):
    a, b, c = make_failed_jobs(conn, 3)
    assert main(["retry", str(a), "424242", "--database-url", database_url]) == 1
    out = capsys.readouterr().out
    assert "Retried 1 job; skipped 1 (not found: 1)" in out and "skipped 424242: not found" in out
    assert main(["delete", str(b), str(a), "--database-url", database_url]) == 1
    assert "Deleted 1 job; skipped 1 (no longer failed (now todo): 1)" in capsys.readouterr().out
    assert main(["restore", str(b), "--database-url", database_url]) == 0
    assert "Restored 1 job" in capsys.readouterr().out
    assert job_status(conn, b) == "failed"
    actor = conn.execute("SELECT actor FROM jobdash_audit_log ORDER BY id LIMIT 1").fetchone()[0]
    assert actor and actor != "dashboard"
    assert (
        main(["retry", "--all-failed", "--queue", "default", "--database-url", database_url]) == 0
    )
    assert "Retried 2 jobs" in capsys.readouterr().out
    assert job_status(conn, c) == "todo"
    assert main(["retry", "--all-failed", "--database-url", database_url]) == 0
    assert "Retried 0 jobs" in capsys.readouterr().out


def test_cli_retry_options(database_url, conn, capsys):
    a, b, c = make_failed_jobs(conn, 3, queue="mail")
    url = ["--database-url", database_url]
    assert main(["retry", str(a), "--at", "2031-01-02T03:04:05", "--priority", "7", *url]) == 0
    assert main(["retry", "--all-failed", "--queue", "mail", "--to-queue", "mail-slow", *url]) == 0
    capsys.readouterr()
    rows = conn.execute(
        "SELECT id, queue_name, priority, scheduled_at > now() FROM procrastinate_jobs ORDER BY id"
    ).fetchall()
    assert rows == [(a, "mail", 7, True), (b, "mail-slow", 2, False), (c, "mail-slow", 0, False)]
    options = [r[0] for r in conn.execute("SELECT details->'options' FROM jobdash_audit_log")]
    assert options == [
        {"at": "2031-01-02T03:04:05+00:00", "priority": 7},
        {"queue": "mail-slow"},
    ]
    # --queue is a filter: with ids it is refused, naming the option that moves jobs.
    assert main(["retry", str(a), "--queue", "other", *url]) == 2
    assert "use --to-queue" in capsys.readouterr().err
    assert main(["retry", str(a), "--at", "tomorrow", *url]) == 2
    assert "--at: not an ISO 8601 time" in capsys.readouterr().err
    assert main(["retry", str(a), "--to-queue", " ", *url]) == 2
    assert "not a queue name" in capsys.readouterr().err


def test_cli_database_error_is_exit_2(server_url, empty_database_url, capsys):
    assert main(["retry", "1", "--database-url", empty_database_url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jobdash retry: error: ") and "jobdash migrate" in err
    assert "\n" not in err


def test_cli_bad_input_is_one_line(database_url, capsys):
    assert main(["retry", "abc", "--database-url", database_url]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "jobdash retry: error: not a job id: 'abc'"
    assert main(["delete", "--database-url", database_url]) == 2
    assert main(["retry", "1", "--all-failed", "--database-url", database_url]) == 2
    assert (
        main(
            ["retry", "--all-failed", "--failed-since", "yesterday", "--database-url", database_url]
        )
        == 2
    )
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_cli_read_only(database_url, conn, capsys, monkeypatch):
    [a] = make_failed_jobs(conn, 1)
    monkeypatch.setenv("JOBDASH_READ_ONLY", "1")
    assert main(["retry", str(a), "--database-url", database_url]) == 2
    assert "read-only" in capsys.readouterr().err
    assert job_status(conn, a) == "failed"


def test_cli_export_failed(database_url, conn, tmp_path, capsys):
    make_failed_jobs(conn, 4, queue="x", message='=HYPERLINK("http://evil")')
    target = tmp_path / "failed.csv"
    assert (
        main(
            ["export", "failed", "--queue", "x", "-o", str(target), "--database-url", database_url]
        )
        == 0
    )
    rows = list(csv.reader(target.open(encoding="utf-8", newline="")))
    assert rows[0][:3] == ["id", "queue", "task"] and len(rows) == 5
    assert rows[1][8].startswith("'=HYPERLINK")
    assert rows[1][6].endswith("Z")


def _acting_commands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand that acts on jobs given by id (retry, delete, restore, and any added
    later: cancel, abort, …), by its `ids` positional."""
    subparsers = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return {
        name: parser
        for name, parser in subparsers.choices.items()
        if any(action.dest == "ids" for action in parser._actions)
    }


def test_every_acting_command_documents_its_exit_status():
    commands = _acting_commands()
    assert {"retry", "delete", "restore"} <= set(commands)
    for name, parser in commands.items():
        text = " ".join(parser.format_help().split())
        assert "exit status:" in text, name
        for line in (
            "0 every job was acted on",
            "1 some jobs were skipped or not found",
            "2 error",
        ):
            assert line in text, (name, line)
