"""``kms register``, ``login``, ``logout``, ``whoami`` against the session's daemon."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cli_support import PASSWORD, LiveDaemon, one_error, run
from krakenstream.cli.credentials import CredentialsFile


def test_register_login_whoami_logout(live: LiveDaemon, tmp_path: Path) -> None:
    home = tmp_path / "client"
    email = "alice@example.com"
    r = run(["register", "--email", email, "--password-stdin"], home, live.url,
            input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert f"registered {email} on {live.url}" in r.stdout
    # taken: the gateway's own sentence
    r = run(["register", "--email", email, "--password-stdin"], home, live.url,
            input=PASSWORD + "\n")
    assert r.exit_code == 1 and "error: " in r.stderr and email in r.stderr.lower()

    r = run(["login", "--email", email, "--password-stdin"], home, live.url,
            input="wrong password\n")
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "hint: check the email and password; kms register creates an account")

    r = run(["login", "--email", email, "--password-stdin"], home, live.url,
            input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert f"logged in to {live.url} as {email} until 20" in r.stdout
    creds = home / "credentials.json"
    assert creds.stat().st_mode & 0o777 == 0o600
    stored = orjson.loads(creds.read_bytes())["servers"]
    assert list(stored) == [live.url]
    assert stored[live.url]["email"] == email and stored[live.url]["token"].count(".") == 2

    r = run(["whoami"], home, live.url)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{email} on {live.url} (session until 20")

    r = run(["logout"], home, live.url)
    assert r.exit_code == 0 and f"logged out of {live.url}" in r.stdout
    one_error(run(["whoami"], home, live.url), f"not logged in to {live.url}", "kms login")
    r = run(["logout"], home, live.url)
    assert r.exit_code == 0 and "not logged in" in r.stdout


def test_prompts_hide_and_confirm_the_password(live: LiveDaemon, tmp_path: Path) -> None:
    home = tmp_path / "client"
    email = "bob@example.com"
    r = run(["register"], home, live.url, input=f"{email}\n{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    assert "Email:" in r.stdout and "Repeat for confirmation:" in r.stdout
    assert PASSWORD not in r.output  # hidden
    r = run(["login", "--email", email], home, live.url, input=f"{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    assert CredentialsFile(home / "credentials.json").require(live.url).email == email


def test_bad_registration_shows_the_policy(live: LiveDaemon, tmp_path: Path) -> None:
    r = run(["register", "--email", "carol@example.com", "--password-stdin"], tmp_path,
            live.url, input="short\n")
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and "password" in r.stderr.lower()
    r = run(["register", "--email", "not-an-email", "--password-stdin"], tmp_path, live.url,
            input=PASSWORD + "\n")
    assert r.exit_code == 1 and "email" in r.stderr.lower()
    r = run(["login", "--email", "x@example.com", "--password-stdin"], tmp_path, live.url,
            input="")
    one_error(r, "no password on stdin", 'echo "$PASSWORD" | kms login --email EMAIL '
              "--password-stdin")


@pytest.mark.slow
def test_too_many_failed_logins(tmp_path: Path) -> None:
    # a daemon of its own: the throttle counts per client address too, and every test's
    # address is 127.0.0.1
    gateway = LiveDaemon(tmp_path / "daemon", roles=("gateway",))
    gateway.start()
    try:
        email = "mallory@example.com"
        gateway.login(email)
        results = [run(["login", "--email", email, "--password-stdin"], tmp_path,
                       gateway.url, input="guess\n") for _ in range(6)]
    finally:
        gateway.stop()
    assert all(r.exit_code == 1 for r in results)
    last = results[-1].stderr.strip().splitlines()
    assert last[0].startswith("error: ") and "try again" in last[0]
    assert last[1].startswith("hint: wait ") and last[1].endswith(" s, then try again")


def test_password_stdin_without_an_email_is_refused(live: LiveDaemon, tmp_path: Path) -> None:
    """The email prompt would read stdin, which holds the password: it became the email."""
    for command in ("login", "register"):
        r = run([command, "--password-stdin"], tmp_path, live.url, input=PASSWORD + "\n")
        one_error(r, "--password-stdin needs --email: stdin holds the password",
                  f"printf '%s\\n' \"$PASSWORD\" | kms {command} --email EMAIL "
                  "--password-stdin")
        assert PASSWORD not in r.output
    assert not (tmp_path / "credentials.json").exists()
