"""Every client command through typer's CliRunner against a real daemon on loopback (``kms sim``
and ``kms daemon run`` as child processes), one for the whole module to keep it fast.

Each test gives the CLI its own KMS_HOME (credentials are the client's files), so tests do not
depend on each other's logins; the daemon's files live in the module's home.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli_support import PASSWORD, LiveDaemon, make_snapshots, prefill
from conftest import free_port
from krakenstream.cli import app
from krakenstream.core.snapshot import CSV_COLUMNS, Snapshot
from krakenstream.credentials import Credential, CredentialsFile

#: an untracked pair whose full history (10,000 snapshots) is written before the daemon starts
FULL = "ADA/USD"
FULL_START_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
N_FULL = 10_000

runner = CliRunner()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    home = tmp_path_factory.mktemp("daemon-home")
    prefill(home, make_snapshots(FULL, N_FULL, start_ms=FULL_START_MS))
    daemon = LiveDaemon(home)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


def run(args: list[str], home: Path, server: str, *, input: str | None = None) -> Result:
    """``kms ARGS`` with its own home; never a traceback unless --verbose asked for one."""
    result = runner.invoke(
        app, args, input=input,
        env={"KMS_HOME": str(home), "KMS_SERVER": server, "COLUMNS": "200", "KMS_VERBOSE": ""},
    )
    if "--verbose" not in args:
        assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def token(live: LiveDaemon) -> str:
    return live.login("cli-user@example.com")


@pytest.fixture
def user_home(tmp_path: Path, live: LiveDaemon, token: str) -> Path:
    """A client home already logged in to the module's daemon."""
    home = tmp_path / "client"
    CredentialsFile(home / "credentials.json").save(
        live.url, Credential("cli-user@example.com", token))
    return home


def one_error(result: Result, message: str, hint: str | None) -> None:
    """A failure the CLI expected: exit 1, one error line (plus a hint line), nothing else."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: "), lines
    assert message in lines[0], lines
    if hint is None:
        assert len(lines) == 1, lines
    else:
        assert lines[1:] == [f"hint: {hint}"], lines
    assert result.stdout == ""


# -- accounts -----------------------------------------------------------------------------


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


def test_credentials_are_kept_per_server(live: LiveDaemon, user_home: Path) -> None:
    other = f"http://127.0.0.1:{free_port()}"
    CredentialsFile(user_home / "credentials.json").save(other, Credential("z@example.com", "t"))
    r = run(["whoami"], user_home, live.url)
    assert r.exit_code == 0 and r.stdout.startswith("cli-user@example.com on ")
    r = run(["whoami", "--server", other], user_home, live.url)
    one_error(r, f"cannot reach the daemon at {other}", "kms daemon start")


# -- errors shared by every command -------------------------------------------------------


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


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    CredentialsFile(tmp_path / "credentials.json").save(dead, Credential("a@b.c", "t"))
    r = run(["--verbose", "pairs"], tmp_path, dead)
    assert r.exit_code == 1
    assert "Traceback" in r.stderr and "ConnectError" in r.stderr
    assert f"error: cannot reach the daemon at {dead}" in r.stderr


def test_a_bad_server_url(tmp_path: Path) -> None:
    one_error(run(["whoami", "--server", "localhost:3000"], tmp_path, "http://x:1"),
              "not a daemon URL", "give http://HOST:PORT, e.g. http://127.0.0.1:3000")


def test_a_malformed_server_url_is_one_line(tmp_path: Path) -> None:
    one_error(run(["whoami", "--server", "http://[::1"], tmp_path, "http://x:1"),
              "not a daemon URL: 'http://[::1' (Invalid IPv6 URL)",
              "give http://HOST:PORT, e.g. http://127.0.0.1:3000")


def test_brackets_in_a_message_are_shown_as_typed(tmp_path: Path) -> None:
    # rich would read "[/]" as markup (and raise); an error message is never markup
    r = run(["history", "ETH/USD", "--since", "[/]"], tmp_path, "http://127.0.0.1:1")
    assert r.exit_code == 1 and "--since '[/]'" in r.stderr, r.output


def test_completion_can_be_installed() -> None:
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout


# -- pairs --------------------------------------------------------------------------------


def test_pairs_track_untrack(live: LiveDaemon, user_home: Path) -> None:
    r = run(["pairs"], user_home, live.url)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    header = next(line for line in lines if "state" in line)
    assert "frames" in header and "snapshots" in header and "resyncs" in header
    assert any(line.split()[0] == "ETH/USD" for line in lines if line.strip())
    assert any(line.split()[0] == "BTC/USD" for line in lines if line.strip())

    r = run(["track", "SOL/USD"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("tracking SOL/USD (feed ")
    one_error(run(["track", "sol-usd"], user_home, live.url), "SOL/USD", None)  # 409
    r = run(["pairs", "--json"], user_home, live.url)
    listed = {p["pair"]: p for p in orjson.loads(r.stdout)["pairs"]}
    assert {"ETH/USD", "BTC/USD", "SOL/USD"} <= set(listed)
    assert listed["ETH/USD"]["state"] in ("connecting", "live")

    r = run(["untrack", "SOL/USD"], user_home, live.url)
    assert r.exit_code == 0 and r.stdout.strip() == "stopped tracking SOL/USD"
    one_error(run(["untrack", "SOL/USD"], user_home, live.url), "SOL/USD", None)  # 404
    r = run(["pairs", "--json"], user_home, live.url)
    assert "SOL/USD" not in {p["pair"] for p in orjson.loads(r.stdout)["pairs"]}


def test_track_a_malformed_pair(live: LiveDaemon, user_home: Path) -> None:
    r = run(["track", "NOSLASH"], user_home, live.url)
    assert r.exit_code == 1 and r.stderr.startswith("error: ") and "NOSLASH" in r.stderr


# -- latest and history -------------------------------------------------------------------


def test_latest(live: LiveDaemon, user_home: Path, token: str) -> None:
    live.wait_snapshots("ETH/USD", token)
    r = run(["latest", "ETH/USD", "--json"], user_home, live.url)
    assert r.exit_code == 0, r.output
    snap = Snapshot.from_dict(orjson.loads(r.stdout))
    assert snap.pair == "ETH/USD" and snap.bids and snap.asks
    r = run(["latest", "eth-usd"], user_home, live.url)
    assert r.exit_code == 0, r.output
    for expected in ("ETH/USD", "best bid / ask", "spread", "bps", "mid", "checksum", "cum"):
        assert expected in r.stdout, expected


def test_unknown_pair_gets_the_gateways_message(live: LiveDaemon, user_home: Path) -> None:
    for args in (["latest", "DOGE/XYZ"], ["history", "DOGE/XYZ"],
                 ["history", "DOGE/XYZ", "--csv", "-"]):
        r = run(args, user_home, live.url)
        assert r.exit_code == 1, r.output
        assert r.stderr.startswith("error: ") and "DOGE/XYZ" in r.stderr
        assert r.stderr.strip().endswith("hint: kms pairs lists the tracked pairs")
        assert r.stdout == ""


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_ten_thousand_rows_csv_equals_json(
    live: LiveDaemon, user_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ada.csv"
    r = run(["history", FULL, "--csv", str(out)], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert f"wrote {N_FULL} snapshots to {out}" in r.stderr
    rows = _csv_rows(out.read_text())
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == N_FULL + 1
    assert not list(tmp_path.glob(".*.part"))

    r = run(["history", FULL, "--json"], user_home, live.url)
    assert r.exit_code == 0
    doc = orjson.loads(r.stdout)
    assert doc["pair"] == FULL and doc["order"] == "desc"
    snaps = [Snapshot.from_dict(s) for s in doc["snapshots"]]
    assert len(snaps) == N_FULL
    assert rows[1:] == [s.csv_row() for s in snaps]
    assert snaps[0].seq == N_FULL and snaps[-1].seq == 1  # newest first
    assert rows[1][0] == "2025-11-24T18:46:39.000Z"  # ISO 8601 UTC: start + 9,999 s


def test_a_file_name_with_brackets_is_named_as_typed(
    live: LiveDaemon, user_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eth [bold]x[red].csv"
    r = run(["history", FULL, "--csv", str(out), "--limit", "2"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert f"wrote 2 snapshots to {out}" in r.stderr and len(_csv_rows(out.read_text())) == 3


def test_history_csv_to_stdout_and_ndjson(live: LiveDaemon, user_home: Path) -> None:
    r = run(["history", FULL, "--csv", "-", "--limit", "3", "--order", "asc"], user_home,
            live.url)
    assert r.exit_code == 0, r.output
    rows = _csv_rows(r.stdout)
    assert rows[0] == CSV_COLUMNS and [row[2] for row in rows[1:]] == ["1", "2", "3"]
    r = run(["history", FULL, "--ndjson", "--limit", "3", "--order", "asc"], user_home,
            live.url)
    lines = r.stdout.splitlines()
    assert [Snapshot.from_json(line).csv_row() for line in lines] == rows[1:]


def test_history_range(live: LiveDaemon, user_home: Path) -> None:
    # seconds 100..109 after the start, both ends included; one ISO, one epoch ms
    r = run(["history", FULL, "--ndjson", "--since", "2025-11-24T16:01:40Z", "--until",
             str(FULL_START_MS + 109_000), "--order", "asc"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert [orjson.loads(line)["seq"] for line in r.stdout.splitlines()] == list(range(101, 111))
    r = run(["history", FULL, "--since", "yesterday"], user_home, live.url)
    one_error(r, "--since 'yesterday'", "e.g. --since 2026-11-25T17:00:00Z, --since "
              "1764090000000, --since 1h")


def test_history_table(live: LiveDaemon, user_home: Path) -> None:
    r = run(["history", FULL], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert f"{FULL}: 50 snapshots, newest first" in r.stdout
    assert r.stdout.count("2025-11-24T") == 50
    assert "more snapshots are kept" in r.stderr
    r = run(["history", FULL, "--limit", "2", "--order", "asc"], user_home, live.url)
    assert f"{FULL}: 2 snapshots, oldest first" in r.stdout
    assert "2025-11-24T16:00:00.000Z" in r.stdout and "more snapshots" not in r.stderr


def test_history_bad_options(live: LiveDaemon, user_home: Path) -> None:
    one_error(run(["history", FULL, "--json", "--ndjson"], user_home, live.url),
              "choose one of --json, --ndjson and --csv", None)
    one_error(run(["history", FULL, "--order", "sideways"], user_home, live.url),
              "--order 'sideways': expected asc or desc", None)
    r = run(["history", FULL, "--csv", str(user_home)], user_home, live.url)
    assert r.exit_code == 1 and "is a folder" in r.stderr


# -- stream -------------------------------------------------------------------------------


def test_stream_once(live: LiveDaemon, user_home: Path, token: str) -> None:
    live.wait_snapshots("BTC/USD", token)
    r = run(["stream", "ETH/USD", "btc-usd", "--once", "--depth", "3"], user_home, live.url)
    assert r.exit_code == 0, r.output
    out = r.stdout
    for expected in ("ETH/USD", "BTC/USD", "mid ", "spread ", "bps", "last change 20",
                     "rate ", "bid", "ask", "cum"):
        assert expected in out, expected
    assert "waiting for the first snapshot" not in out
    assert out.count("live") >= 2


def test_stream_untracked_pair(live: LiveDaemon, user_home: Path) -> None:
    one_error(run(["stream", "ETH/USD", "XRP/JPY", "--once"], user_home, live.url),
              f"XRP/JPY is not tracked by the daemon at {live.url}", "kms track XRP/JPY")


def test_stream_for_a_duration(live: LiveDaemon, user_home: Path) -> None:
    r = run(["stream", "ETH/USD", "--duration", "1.5", "--depth", "2"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert "ETH/USD" in r.stdout and "bid" in r.stdout


def test_stream_ctrl_c_exits_cleanly(live: LiveDaemon, user_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env.update(KMS_HOME=str(user_home), KMS_SERVER=live.url)
    proc = subprocess.Popen([sys.executable, "-m", "krakenstream", "stream", "ETH/USD"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2.5)  # started, connected, a snapshot or two shown
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130), err
    assert b"Traceback" not in err and b"Traceback" not in out
    assert b"ETH/USD" in out


def test_analyze(live: LiveDaemon, user_home: Path) -> None:
    from krakenstream.commands.analyze import format_summary

    r = run(["analyze", FULL, "--json"], user_home, live.url)
    assert r.exit_code == 0, r.output
    summary = orjson.loads(r.stdout)
    assert summary["pair"] == FULL and summary["snapshots"] == N_FULL
    assert summary["coverage"] == 1.0 and summary["interval_ms"] == 1000
    r = run(["analyze", FULL, "--limit", "100"], user_home, live.url)
    assert r.exit_code == 0, r.output
    for expected in ("100 of 100 expected", "volatility per step", "spread median"):
        assert expected in r.stdout, expected
    assert format_summary({"pair": "X/Y", "snapshots": 0}).row_count == 10
    r = run(["analyze", "DOGE/XYZ"], user_home, live.url)
    assert r.exit_code == 1 and "hint: kms pairs lists the tracked pairs" in r.stderr
