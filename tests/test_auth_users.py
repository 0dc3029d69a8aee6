"""Built-in users: scrypt hashes, NAME:ROLE:HASH lines, the users file, `jobdash user add`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from jobdash.core.auth import passwords
from jobdash.core.auth.identity import Identity, Role
from jobdash.core.auth.passwords import hash_password, parse_hash, verify_password
from jobdash.core.auth.users import (
    UserDirectory,
    load_user_directory,
    name_problem,
    users_from_text,
)
from jobdash.core.errors import ConfigError
from tests.auth_helpers import cheap_hash, user_line, users_text


def test_a_hash_carries_its_parameters_and_verifies_only_its_password():
    encoded = hash_password("correct horse", n=16, r=2, p=1)
    assert encoded.startswith("scrypt$n=16,r=2,p=1$")
    assert ":" not in encoded and ";" not in encoded and "correct" not in encoded
    stored = parse_hash(encoded)
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horse ", stored)
    assert not verify_password("", stored)
    assert hash_password("correct horse", n=16) != hash_password("correct horse", n=16)  # salted


def test_the_default_parameters_are_scrypt_2_14_8_1():
    encoded = hash_password("pw")
    assert encoded.startswith("scrypt$n=16384,r=8,p=1$")
    assert verify_password("pw", parse_hash(encoded))


def test_verification_compares_in_constant_time():
    stored = parse_hash(cheap_hash("pw"))
    compare = passwords.hmac.compare_digest
    with mock.patch.object(passwords.hmac, "compare_digest", wraps=compare) as cd:
        verify_password("nope", stored)
    assert cd.call_count == 1


@pytest.mark.parametrize(
    "encoded",
    [
        "plain-password",
        "scrypt$n=16,r=1,p=1$c2FsdHNhbHQ",
        "scrypt$n=15,r=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",  # n not a power of 2
        "scrypt$n=2097152,r=8,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",  # n too big
        "scrypt$n=16,r=64,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",
        "scrypt$n=16,r=1,p=1$c2Fs$a2V5a2V5a2V5a2V5a2V5a2V5",  # salt too short
        "scrypt$n=16,r=1,p=1$c2FsdHNhbHRzYWx0$a",  # not base64
    ],
)
def test_unusable_hashes_are_refused(encoded):
    with pytest.raises(ValueError):
        parse_hash(encoded)


def test_empty_and_overlong_passwords_are_refused_when_hashing():
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
    with pytest.raises(ValueError, match="longer"):
        hash_password("x" * 1025, n=16)


@pytest.mark.parametrize("name", ["", "a:b", "a;b", "a b", "a\nb", "a\tb", "x" * 65, "\x00"])
def test_bad_names(name):
    assert name_problem(name)


def test_good_names():
    for name in ("alice", "ops@acme.com", "Zoë", "a.b-c_d"):
        assert name_problem(name) is None


def test_users_from_the_environment_split_on_newlines_or_semicolons():
    text = f"{user_line('alice')};{user_line('oscar')}\n\n{user_line('vera')};"
    users = users_from_text(text)
    assert {name: user.role for name, user in users.items()} == {
        "alice": Role.ADMIN,
        "oscar": Role.OPERATOR,
        "vera": Role.VIEWER,
    }


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("alice", "expected NAME:ROLE:HASH"),
        ("alice:admin", "expected NAME:ROLE:HASH"),
        ("alice:boss:scrypt$x", "unknown role 'boss'"),
        ("alice:admin:plain-password", "not a scrypt hash"),
        ("a b:admin:scrypt$x", "cannot contain"),
    ],
)
def test_a_bad_line_is_one_line_naming_where_and_never_the_hash(line, why):
    with pytest.raises(ConfigError) as bad:
        users_from_text(f"{user_line('vera')};{line}")
    message = str(bad.value)
    assert message.startswith("JOBDASH_USERS entry 2: ") and why in message
    assert "plain-password" not in message and "\n" not in message


def test_a_name_listed_twice_is_an_error():
    with pytest.raises(ConfigError, match="'vera' is listed twice"):
        users_from_text(f"{user_line('vera')};{user_line('vera', 'admin')}")


def test_the_users_file_has_comments_and_is_read_again_when_it_changes(tmp_path: Path):
    path = tmp_path / "users"
    path.write_text(f"# the team\n\n{user_line('vera')}\n   # indented comment\n")
    directory = load_user_directory(None, path)
    assert directory is not None and list(directory.current()) == ["vera"]
    path.write_text(f"{user_line('vera', 'operator')}\n{user_line('oscar')}\n")
    os.utime(path, ns=(1, 1))  # a different stamp even within one mtime tick
    assert directory.get("vera").role is Role.OPERATOR and directory.get("oscar")


def test_a_users_file_turning_bad_fails_closed_with_one_line(tmp_path: Path):
    path = tmp_path / "users"
    path.write_text(user_line("vera") + "\n")
    directory = UserDirectory(path=path)
    path.write_text("vera:viewer\n")
    os.utime(path, ns=(2, 2))
    with pytest.raises(ConfigError, match=r"users line 1: expected NAME:ROLE:HASH"):
        directory.get("vera")
    path.unlink()
    with pytest.raises(ConfigError, match="cannot read"):
        directory.get("vera")


def test_settings_choose_the_source_and_refuse_both():
    assert load_user_directory(None, None) is None
    assert load_user_directory("  ", None) is None
    with pytest.raises(ConfigError, match="not both"):
        load_user_directory(users_text(), Path("/nonexistent"))
    with pytest.raises(ConfigError, match="cannot read /nonexistent/users"):
        load_user_directory(None, Path("/nonexistent/users"))


def test_authenticate_spends_the_same_work_on_an_unknown_user():
    directory = UserDirectory(users_from_text(users_text()))
    assert directory.authenticate("vera", "vera-pw") == Identity("vera", Role.VIEWER, "builtin")
    assert directory.authenticate("vera", "wrong") is None
    with mock.patch.object(passwords, "_derive", wraps=passwords._derive) as derive:
        assert directory.authenticate("nobody", "vera-pw") is None
    assert derive.call_count == 1  # a full scrypt against the dummy hash


def test_user_add_prints_exactly_the_line_to_add():
    # The one run of the real command; the refusals below run in-process (faster).
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobdash",
            "user",
            "add",
            "oscar",
            "--role",
            "operator",
            "--password-stdin",
        ],
        input="s3cret pw\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and "s3cret" not in result.stdout + result.stderr
    user = users_from_text(result.stdout)["oscar"]
    assert user.role is Role.OPERATOR and verify_password("s3cret pw", user.password_hash)


def _user_add(monkeypatch, capsys, *args: str, stdin: str = "") -> tuple[int, str, str]:
    from jobdash.app.cli.main import main

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["user", "add", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "stdin", "why"),
    [
        (("a:b", "--role", "admin", "--password-stdin"), "pw\n", "cannot contain"),
        (("a b", "--role", "admin", "--password-stdin"), "pw\n", "cannot contain"),
        (("bob", "--role", "admin", "--password-stdin"), "\n", "the password is empty"),
        (("bob", "--role", "admin", "--password-stdin"), "", "the password is empty"),
        (("bob", "--role", "admin"), "pw\n", "use --password-stdin"),  # not a terminal
    ],
)
def test_user_add_refuses_with_one_line(monkeypatch, capsys, args, stdin, why):
    code, out, err = _user_add(monkeypatch, capsys, *args, stdin=stdin)
    assert code == 2 and out == ""
    assert why in err and err.count("\n") == 1


def test_user_add_refuses_an_unknown_role(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _user_add(monkeypatch, capsys, "bob", "--role", "boss", "--password-stdin", stdin="pw")
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_user_add_reads_one_line_keeping_inner_spaces(monkeypatch, capsys):
    code, out, _ = _user_add(
        monkeypatch, capsys, "zoe", "--role", "viewer", "--password-stdin", stdin=" a b \r\nrest"
    )
    assert code == 0 and verify_password(" a b ", users_from_text(out)["zoe"].password_hash)


def test_user_add_prompts_twice_on_a_terminal(monkeypatch, capsys):
    from jobdash.app.cli.main import main

    answers = iter(["pw one", "pw one"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["user", "add", "zoe", "--role", "viewer"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("zoe:viewer:scrypt$") and line.count("\n") == 1

    answers = iter(["pw one", "pw two"])
    assert main(["user", "add", "zoe", "--role", "viewer"]) == 2
    assert "the passwords differ" in capsys.readouterr().err
