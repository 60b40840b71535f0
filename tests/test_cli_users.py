"""`csms users` and `csms apikeys create --user`: on the database, as the operator runs them.
The password comes from a terminal (asked twice), standard input, a file, or is generated
and printed once; a refusal is one line naming the argument or option, and writes nothing.
On SQLite and PostgreSQL alike (CSMS_TEST_BACKEND)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from csms.cli import main
from csms.config import load_config
from csms.config_values import open_database
from csms.store.api_keys import ApiKeys
from csms.store.users import UserStore
from httpapi.principal import Principal
from storage.db import Database

T = TypeVar("T")
PASSWORD = "a long enough password"


@pytest.fixture
def on_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[Callable[[Callable[[Database], Awaitable[T]]], T]]:
    """The CLI's database (by the environment), and a way to look into it afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "u.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)

    def look(work: Callable[[Database], Awaitable[T]]) -> T:
        async def run() -> T:
            db = await open_database(load_config())  # as the CLI opens it, migrated
            try:
                return await work(db)
            finally:
                await db.close()

        return asyncio.run(run())

    yield look


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def _authenticates(look, name: str, password: str) -> bool:  # type: ignore[no-untyped-def]
    return look(lambda db: UserStore(db).authenticate(name, password)) is not None


def test_add_from_stdin_then_list_role_disable(
    on_database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    _stdin(monkeypatch, PASSWORD + "\n")
    assert main(["users", "add", "ada", "--role", "finance"]) == 0
    assert PASSWORD not in capsys.readouterr().out
    assert _authenticates(on_database, "ada", PASSWORD)

    assert main(["users", "role", "ada", "support"]) == 0
    assert main(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ada\tsupport\t") and out.count("\n") == 1

    assert main(["apikeys", "create", "ada-laptop", "--user", "ada"]) == 0
    key = capsys.readouterr().out.strip()
    assert on_database(lambda db: ApiKeys(db).verify(key)) == Principal("key:ada-laptop", "support")
    assert main(["users", "disable", "ada"]) == 0
    assert on_database(lambda db: ApiKeys(db).verify(key)) is None
    assert not _authenticates(on_database, "ada", PASSWORD)
    assert main(["users", "list"]) == 0
    assert capsys.readouterr().out.split("\t")[3].strip()  # disabled at
    assert main(["users", "enable", "ada"]) == 0
    assert _authenticates(on_database, "ada", PASSWORD)


def test_generate_prints_the_password_once(on_database, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["users", "add", "root", "--role", "admin", "--generate"]) == 0
    password = capsys.readouterr().out.strip()
    assert len(password) >= 12 and _authenticates(on_database, "root", password)
    assert main(["users", "passwd", "root", "--generate"]) == 0
    new = capsys.readouterr().out.strip()
    assert new != password
    assert _authenticates(on_database, "root", new)
    assert not _authenticates(on_database, "root", password)


def test_passwords_from_a_file_and_a_terminal(
    on_database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD + "\r\nsecond line ignored\n")
    assert main(["users", "add", "ops", "--role", "support", "--password-file", str(secret)]) == 0
    assert _authenticates(on_database, "ops", PASSWORD)

    answers = iter(["typed on a terminal", "typed on a terminal"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "passwd", "ops"]) == 0
    assert _authenticates(on_database, "ops", "typed on a terminal")


@pytest.mark.parametrize(
    ("argv", "stdin", "message", "code"),
    [
        (["users", "add", "a b", "--role", "viewer"], PASSWORD, "csms: NAME: a user name", 2),
        (["users", "add", "ops", "--role", "viewer"], "short\n", "csms: stdin: an operator", 2),
        (
            ["users", "add", "ops", "--role", "viewer", "--password-file", "/nonexistent/x"],
            "",
            "csms: --password-file: cannot read /nonexistent/x",
            2,
        ),
        (["users", "passwd", "nobody", "--generate"], "", "csms: NAME: no user nobody", 1),
        (["users", "role", "nobody", "admin"], "", "csms: NAME: no user nobody", 1),
        (["users", "disable", "nobody"], "", "csms: NAME: no user nobody", 1),
        (["apikeys", "create", "k", "--user", "nobody"], "", "csms: --user: no user nobody", 2),
    ],
)
def test_refusals_name_the_argument_and_write_nothing(
    on_database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
    code: int,
) -> None:  # type: ignore[no-untyped-def]
    _stdin(monkeypatch, stdin)
    assert main(argv) == code
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""
    assert on_database(lambda db: UserStore(db).list()) == []
    assert on_database(lambda db: db.fetchall("SELECT name FROM api_keys")) == []


def test_terminal_passwords_must_match_and_names_are_unique(
    on_database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    answers = iter(["the first long password", "the second long password"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "ops", "--role", "viewer"]) == 2
    assert capsys.readouterr().err == "csms: password: the two differ\n"
    assert on_database(lambda db: UserStore(db).list()) == []

    assert main(["users", "add", "ops", "--role", "viewer", "--generate"]) == 0
    capsys.readouterr()
    assert main(["users", "add", "ops", "--role", "admin", "--generate"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "csms: NAME: user ops exists\n" and captured.out == ""
    users = on_database(lambda db: UserStore(db).list())
    assert [(u.name, u.role) for u in users] == [("ops", "viewer")]
