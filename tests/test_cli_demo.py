"""``kms demo``: simulator, daemon and live view from nothing, and nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_support import read_until
from conftest import port_open
from krakenstream.cli import app
from krakenstream.cli.credentials import CredentialsFile

#: kms demo starts a simulator and a daemon: seconds each
pytestmark = pytest.mark.slow

runner = CliRunner()
STARTED = re.compile(r"simulator ws://127\.0\.0\.1:(\d+)/v2, daemon http://127\.0\.0\.1:(\d+),\s+"
                     r"files in (\S+)")


def _ports_closed(text: str) -> Path:
    match = STARTED.search(text.replace("\n", " "))
    assert match, text
    sim_port, daemon_port, home = int(match.group(1)), int(match.group(2)), Path(match.group(3))
    assert not port_open("127.0.0.1", sim_port) and not port_open("127.0.0.1", daemon_port)
    return home


def test_demo_runs_for_a_duration_and_cleans_up(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    result = runner.invoke(app, ["demo", "--duration", "2", "--home", str(home), "--depth", "3"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for expected in ("ETH/USD", "BTC/USD", "mid ", "spread ", "cum"):
        assert expected in result.stdout, expected
    assert _ports_closed(result.stderr) == home.resolve()
    assert "demo stopped" in result.stderr
    # the dashboard's address, and the throwaway account to sign in with there
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/ ", result.stderr)
    assert re.search(r"sign in as\s+demo@example\.com, password\s+\S{20,}", result.stderr)
    # --home keeps the files: the demo user's token is filed under the demo daemon's URL
    creds = CredentialsFile(home / "credentials.json").load()
    assert [c.email for c in creds.values()] == ["demo@example.com"]
    assert (home / "demo-daemon.log").is_file()
    # the same home again: its demo user exists already, so a second one is made; pairs
    # spelled as everywhere else in kms
    result = runner.invoke(app, ["demo", "--duration", "0.5", "--home", str(home),
                                 "--pairs", "eth-usd"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "ETH/USD" in result.stdout and "BTC/USD" not in result.stdout
    emails = sorted(c.email for c in CredentialsFile(home / "credentials.json").load().values())
    assert len(emails) == 2 and emails[1] == "demo@example.com"
    assert emails[0].startswith("demo-")


def test_demo_ctrl_c_stops_everything_and_removes_its_folder() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env["TTY_COMPATIBLE"] = "1"  # the live view drawn as on a terminal, readable as it goes
    proc = subprocess.Popen([sys.executable, "-m", "krakenstream", "demo"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None and proc.stdout is not None
    try:
        err = read_until(proc.stderr, lambda e: b"files in" in e.replace(b"\n", b" "), 60)
        # a snapshot on screen: the whole system ran end to end
        seen = read_until(proc.stdout, lambda out: b"mid " in out, 60)
        proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err += rest
    text = err.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text and "Traceback" not in (seen + out).decode()
    home = _ports_closed(text)
    assert not home.exists()
