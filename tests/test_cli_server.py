"""Which daemon a command talks to (``--server``, ``KMS_SERVER``), and the token it carries:
the failures every client command shares, each one line and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import LiveDaemon, one_error, run
from conftest import free_port
from krakenstream.cli.credentials import Credential, CredentialsFile


def test_credentials_are_kept_per_server(live: LiveDaemon, user_home: Path) -> None:
    other = f"http://127.0.0.1:{free_port()}"
    CredentialsFile(user_home / "credentials.json").save(other, Credential("z@example.com", "t"))
    r = run(["whoami"], user_home, live.url)
    assert r.exit_code == 0 and r.stdout.startswith("cli-user@example.com on ")
    r = run(["whoami", "--server", other], user_home, live.url)
    one_error(r, f"cannot reach the daemon at {other}", "kms daemon start")


@pytest.mark.parametrize(
    "args", [["pairs"], ["latest", "ETH/USD"], ["history", "ETH/USD"], ["track", "SOL/USD"],
             ["untrack", "SOL/USD"], ["stream", "ETH/USD", "--once"], ["whoami"]]
)
def test_not_logged_in(live: LiveDaemon, tmp_path: Path, args: list[str]) -> None:
    one_error(run(args, tmp_path, live.url), f"not logged in to {live.url}", "kms login")


def test_rejected_token(live: LiveDaemon, tmp_path: Path) -> None:
    CredentialsFile(tmp_path / "credentials.json").save(live.url, Credential("a@b.c", "forged"))
    r = run(["pairs"], tmp_path, live.url)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and r.stderr.strip().endswith("hint: kms login")


def test_expired_token_caught_before_asking(live: LiveDaemon, tmp_path: Path) -> None:
    CredentialsFile(tmp_path / "credentials.json").save(
        live.url, Credential("a@b.c", "t", "2020-01-01T00:00:00.000Z"))
    one_error(run(["latest", "ETH/USD"], tmp_path, live.url),
              f"your session on {live.url} expired at 2020-01-01T00:00:00.000Z", "kms login")


@pytest.mark.parametrize(
    "args", [["pairs"], ["latest", "ETH/USD"], ["history", "ETH/USD", "--csv", "-"],
             ["track", "SOL/USD"], ["stream", "ETH/USD", "--once"], ["whoami"]]
)
def test_daemon_not_reachable(tmp_path: Path, args: list[str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    CredentialsFile(tmp_path / "credentials.json").save(dead, Credential("a@b.c", "t"))
    one_error(run(args, tmp_path, dead), f"cannot reach the daemon at {dead}",
              "kms daemon start")


def test_register_not_reachable(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    r = run(["register", "--email", "a@example.com", "--password-stdin"], tmp_path, dead,
            input="whatever-password\n")
    one_error(r, f"cannot reach the daemon at {dead}", "kms daemon start")


def test_a_bad_server_url(tmp_path: Path) -> None:
    one_error(run(["whoami", "--server", "localhost:3000"], tmp_path, "http://x:1"),
              "not a daemon URL", "give http://HOST:PORT, e.g. http://127.0.0.1:3000")


def test_a_malformed_server_url_is_one_line(tmp_path: Path) -> None:
    one_error(run(["whoami", "--server", "http://[::1"], tmp_path, "http://x:1"),
              "not a daemon URL: 'http://[::1' (Invalid IPv6 URL)",
              "give http://HOST:PORT, e.g. http://127.0.0.1:3000")


@pytest.mark.parametrize("args", [["pairs"], ["latest", "ETH/USD"], ["whoami"],
                                  ["stream", "ETH/USD", "--once"]])
def test_no_daemon_and_not_logged_in_says_cannot_reach(tmp_path: Path, args: list[str]) -> None:
    """A newcomer's first command, before any daemon runs: logging in would not help."""
    dead = f"http://127.0.0.1:{free_port()}"
    one_error(run(args, tmp_path, dead), f"cannot reach the daemon at {dead}",
              "kms daemon start")


def test_server_before_the_command(live: LiveDaemon, user_home: Path) -> None:
    """``kms --server URL whoami``; the command's own --server wins, and either beats
    KMS_SERVER (here a dead address)."""
    dead = f"http://127.0.0.1:{free_port()}"
    r = run(["--server", live.url, "whoami"], user_home, dead)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"cli-user@example.com on {live.url}")
    r = run(["--server", dead, "whoami", "--server", live.url], user_home, dead)
    assert r.exit_code == 0, r.output
    one_error(run(["--server", dead, "whoami"], user_home, live.url),
              f"cannot reach the daemon at {dead}", "kms daemon start")
