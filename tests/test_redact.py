"""Sensitive args (JOBDASH_REDACT_ARGS): hidden in every view, export and CLI output, and never
searchable. The rule, then each read model that returns args."""

from __future__ import annotations

import csv
import io
import json

import pytest
from psycopg.types.json import Jsonb

from jobdash.app.cli.main import main
from jobdash.app.read import dashboard, failed_jobs, job_detail, jobs
from jobdash.app.read.job_filter import JobFilter
from jobdash.app.rules.args_search import parse_args_search
from jobdash.app.rules.redact import (
    MASK,
    key_is_redacted,
    redact,
    redact_json_text,
    redacted_keys,
)
from jobdash.core.errors import FilterError
from jobdash.core.settings import DEFAULT_REDACT_ARGS, load_settings
from tests.actions_helpers import make_failed_jobs
from tests.hostile import HOSTILE

P = DEFAULT_REDACT_ARGS
SECRET = "s3cr3t-value"
NESTED = {
    "customer_id": 42,
    "Password": SECRET,
    "billing": {"card_number": SECRET, "name": "Ann", "items": [{"api_key": SECRET, "n": 1}]},
    "headers": [{"Authorization": f"Bearer {SECRET}"}, {"accept": "json"}],
    "deep": {"a": {"b": {"c": {"refresh_token": {"nested": SECRET}}}}},
}


def test_keys_match_case_insensitively_as_substrings_or_globs():
    assert key_is_redacted("DB_PASSWORD", P)
    assert key_is_redacted("stripe_token", P)
    assert not key_is_redacted("customer_id", P)
    assert key_is_redacted("card_last4", ("card_*",))
    assert not key_is_redacted("discard", ("card_*",))


def test_nested_keys_at_any_depth_and_in_lists_are_masked():
    redacted = redact(NESTED, P)
    assert SECRET not in json.dumps(redacted)
    assert redacted["customer_id"] == 42
    assert redacted["Password"] == MASK
    assert redacted["billing"] == {
        "card_number": MASK, "name": "Ann", "items": [{"api_key": MASK, "n": 1}],
    }  # fmt: skip
    assert redacted["headers"][0] == {"Authorization": MASK}
    assert redacted["deep"]["a"]["b"]["c"] == {"refresh_token": MASK}
    assert NESTED["Password"] == SECRET  # the input is left as it was
    assert redacted_keys(NESTED, P) == [
        "Password", "card_number", "api_key", "Authorization", "refresh_token",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [s for group in ("html_and_script", "markdown", "spreadsheet_formulas", "unicode",
                     "sql_and_shell") for s in HOSTILE[group]],
)  # fmt: skip
def test_hostile_keys_and_values(text):
    args = {text: "kept", "token": text, "nested": [{"secret": text, "other": text}]}
    redacted = redact(args, P)
    assert redacted[text] == "kept" or key_is_redacted(text, P)
    assert redacted["token"] == MASK and redacted["nested"][0]["secret"] == MASK
    assert redacted["nested"][0]["other"] == text
    whole = json.dumps(args, ensure_ascii=False)
    assert json.loads(redact_json_text(whole, P))["token"] == MASK
    # Cut short (a preview), whatever comes after a sensitive key is gone.
    cut = redact_json_text(whole[:-5], P)
    assert text not in cut.partition('"token"')[2]


def test_cut_json_text_stops_at_the_first_sensitive_key():
    text = json.dumps({"user": "ann", "password": SECRET, "more": "x" * 50})[:60]
    shown = redact_json_text(text, P)
    assert SECRET not in shown and shown.startswith('{"user": "ann", "password": ')
    assert shown.endswith(f'"{MASK}"…')
    escaped = '{"pass\\u0077ord": "' + SECRET  # an escaped key, cut
    assert SECRET not in redact_json_text(escaped, P)


def test_searching_a_redacted_key_is_refused():
    assert parse_args_search('{"customer_id": 42}', P) == {"customer_id": 42}
    assert parse_args_search("customer.id=42", P) == {"customer": {"id": 42}}
    assert parse_args_search("name=Ann", P) == {"name": "Ann"}
    assert parse_args_search('tags=["a"]', P) == {"tags": ["a"]}
    for search in ('{"password": "x"}', '{"billing": {"card": 1}}', "api_key=1", "a.token=2"):
        with pytest.raises(FilterError, match="is a redacted key") as info:
            parse_args_search(search, P)
        assert "\n" not in str(info.value)
    for bad in ("{", "[1]", "novalue", "=1", "a..b=1"):
        with pytest.raises(FilterError):
            parse_args_search(bad, P)


def test_patterns_come_from_jobdash_redact_args(monkeypatch):
    monkeypatch.setenv("JOBDASH_REDACT_ARGS", "IBAN, ssn_*")
    assert load_settings().redact_args == ("iban", "ssn_*")
    monkeypatch.setenv("JOBDASH_REDACT_ARGS", "")
    assert load_settings().redact_args == ()
    monkeypatch.delenv("JOBDASH_REDACT_ARGS")
    assert load_settings().redact_args == DEFAULT_REDACT_ARGS


@pytest.fixture
def secret_job(conn):
    [job_id] = make_failed_jobs(conn, 1)
    conn.execute("UPDATE procrastinate_jobs SET args = %s WHERE id = %s", (Jsonb(NESTED), job_id))
    return job_id


def test_every_read_model_hides_the_values(conn, database_url, secret_job, capsys):
    page = failed_jobs.list_failed_jobs(conn, failed_jobs.FailedJobFilter())
    assert SECRET not in page.rows[0]["args"] and MASK in page.rows[0]["args"]
    detail = job_detail.load_job_detail(conn, secret_job)
    assert SECRET not in json.dumps(detail.job["args"])
    everything = failed_jobs.FailedJobFilter()
    exported = list(failed_jobs.export_failed_jobs_rows(conn, everything))
    assert SECRET not in json.dumps(exported, default=str)
    preview = dashboard.load_failed_jobs(conn).jobs[0].payload_preview
    assert SECRET not in preview
    listed = jobs.load_jobs_page(conn, JobFilter()).rows[0]["args"]
    assert SECRET not in listed and MASK in listed
    rows = jobs.export_jobs(conn, JobFilter(), 10)
    assert rows[0]["args"]["billing"]["card_number"] == MASK

    assert main(["snapshot", "--json", "--database-url", database_url]) == 0
    assert main(["jobs", "--format", "json", "--database-url", database_url]) == 0
    assert main(["jobs", "--format", "csv", "--database-url", database_url]) == 0
    assert main(["export", "failed", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and MASK in out
    assert list(csv.reader(io.StringIO(out)))  # still well-formed CSV
