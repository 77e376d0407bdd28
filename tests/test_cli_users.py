"""``kms user ...`` (an admin's account management) and ``kms logout``'s revocation, against
the session's daemon, whose first account (``USER``) is its admin; ``kms user add --local``
against a users store with no daemon at all."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cli_support import PASSWORD, USER, LiveDaemon, one_error, run
from krakenstream.cli.credentials import Credential, CredentialsFile
from krakenstream.cli.render import format_users
from krakenstream.cli.users import find_user
from krakenstream.client import KmsClient
from krakenstream.errors import AuthError, NotFound


def reader_home(live: LiveDaemon, tmp_path: Path, email: str) -> Path:
    """A client home logged in to the daemon as a (new) reader."""
    home = tmp_path / email.split("@")[0]
    CredentialsFile(home / "credentials.json").save(live.url, Credential(email, live.login(email)))
    return home


def test_admin_manages_accounts(live: LiveDaemon, user_home: Path) -> None:
    r = run(["user", "add", "--email", "carol@example.com", "--password-stdin"], user_home,
            live.url, input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("added carol@example.com (id ") and "as reader" in r.stdout
    r = run(["user", "list"], user_home, live.url)
    assert r.exit_code == 0, r.output
    rows = [line.split() for line in r.stdout.splitlines()]
    assert ["id", "email", "role", "state", "created"] == rows[0]
    assert any(row[1:4] == [USER, "admin", "enabled"] for row in rows)
    assert any(row[1:4] == ["carol@example.com", "reader", "enabled"] for row in rows)
    users = orjson.loads(run(["user", "list", "--json"], user_home, live.url).stdout)["users"]
    carol = next(u for u in users if u["email"] == "carol@example.com")

    for args, expected in [
        (["promote", "CAROL@example.com"], "promoted carol@example.com (id {id}): now admin, "
                                           "enabled"),
        (["demote", str(carol["id"])], "demoted carol@example.com (id {id}): now reader, "
                                       "enabled"),
        (["disable", "carol@example.com"], "disabled carol@example.com (id {id}): now reader, "
                                           "disabled"),
        (["enable", "carol@example.com"], "enabled carol@example.com (id {id}): now reader, "
                                          "enabled"),
        (["delete", "carol@example.com", "--yes"], "deleted carol@example.com (id {id})"),
    ]:
        r = run(["user", *args], user_home, live.url)
        assert r.exit_code == 0, (args, r.output)
        assert r.stdout.strip() == expected.format(id=carol["id"])
    one_error(run(["user", "promote", "carol@example.com"], user_home, live.url),
              "no account 'carol@example.com' on this server", "kms user list")
    # the last enabled admin stays one: the gateway's 409, as one line and a hint
    one_error(run(["user", "demote", USER], user_home, live.url), "last enabled admin",
              "promote another account first: kms user promote EMAIL")


def test_a_reader_is_refused_with_a_clear_line(live: LiveDaemon, tmp_path: Path) -> None:
    home = reader_home(live, tmp_path, "reader-cli@example.com")
    hint = "an admin can promote you: kms user promote EMAIL"
    one_error(run(["track", "XRP/USD"], home, live.url),
              "POST /api/pairs needs an admin account; reader-cli@example.com is a reader", hint)
    one_error(run(["untrack", "ETH/USD"], home, live.url), "needs an admin account", hint)
    one_error(run(["user", "list"], home, live.url), "GET /api/users needs an admin account",
              hint)
    r = run(["pairs"], home, live.url)  # readers read
    assert r.exit_code == 0, r.output
    r = run(["whoami"], home, live.url)
    assert r.exit_code == 0 and r.stdout.rstrip().endswith(", reader"), r.output


def test_logout_revokes_the_token_on_the_server(live: LiveDaemon, tmp_path: Path) -> None:
    home = reader_home(live, tmp_path, "leaving@example.com")
    token = CredentialsFile(home / "credentials.json").load()[live.url].token
    r = run(["logout"], home, live.url)
    assert r.exit_code == 0 and r.stdout.strip() == f"logged out of {live.url}"
    assert r.stderr == ""
    with KmsClient(live.url, token) as client, pytest.raises(AuthError, match="revoked"):
        client.me()  # a copy of the token no longer works anywhere


def test_logout_from_a_daemon_that_is_down_still_forgets(tmp_path: Path) -> None:
    home = tmp_path / "client"
    url = "http://127.0.0.1:9"  # the discard port: nothing answers
    CredentialsFile(home / "credentials.json").save(
        url, Credential("x@example.com", "a.b.c", "2099-01-01T00:00:00Z"))
    r = run(["logout"], home, url)
    assert r.exit_code == 0 and r.stdout.strip() == f"logged out of {url}"
    assert r.stderr.startswith("warning: cannot reach the daemon")
    assert "stays valid on that server until it expires (until 2099-01-01" in r.stderr
    assert CredentialsFile(home / "credentials.json").get(url) is None


def test_add_local_makes_the_first_admin_of_a_closed_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "server"
    monkeypatch.setenv("KMS_AUTH_REGISTRATION", "closed")
    monkeypatch.setenv("KMS_AUTH_BCRYPT_COST", "4")
    r = run(["user", "add", "--local", "--admin", "--email", "root@example.com",
             "--password-stdin"], home, "http://127.0.0.1:9", input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "added root@example.com (id 1) as admin"
    r = run(["user", "add", "--local", "--email", "staff@example.com", "--password-stdin"],
            home, "http://127.0.0.1:9", input=PASSWORD + "\n")
    assert r.stdout.strip() == "added staff@example.com (id 2) as reader"
    one_error(run(["user", "add", "--local", "--email", "root@example.com",
                   "--password-stdin"], home, "http://127.0.0.1:9", input=PASSWORD + "\n"),
              "already registered", None)
    assert (home / "users.sqlite3").exists()


def test_find_user_and_the_table() -> None:
    users = [{"id": 1, "email": "Admin@example.com", "role": "admin", "disabled": False,
              "created_at": "2026-01-01T00:00:00Z"},
             {"id": 12, "email": "stra\u00dfe@example.com", "role": "reader", "disabled": True,
              "created_at": "2026-01-02T00:00:00Z"}]
    assert find_user(users, "admin@EXAMPLE.com")["id"] == 1
    assert find_user(users, "12")["id"] == 12
    assert find_user(users, "strasse@example.com")["id"] == 12  # the server's own rule
    with pytest.raises(NotFound):
        find_user(users, "13")
    table = format_users(users)
    assert [c.header for c in table.columns] == ["id", "email", "role", "state", "created"]
    assert list(table.columns[3].cells) == ["enabled", "disabled"]
