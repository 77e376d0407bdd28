"""The error boundary every command runs in: one line and a hint, the traceback only with
``--verbose``, and what was typed shown as typed (never read as markup)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from cli_support import one_error, run
from conftest import free_port
from krakenstream.cli.common import PIPE_WIDTH, fit_to_output
from krakenstream.cli.credentials import Credential, CredentialsFile


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    CredentialsFile(tmp_path / "credentials.json").save(dead, Credential("a@b.c", "t"))
    r = run(["--verbose", "pairs"], tmp_path, dead)
    assert r.exit_code == 1
    assert "Traceback" in r.stderr and "ConnectError" in r.stderr
    assert f"error: cannot reach the daemon at {dead}" in r.stderr


def test_brackets_in_a_message_are_shown_as_typed(tmp_path: Path) -> None:
    # rich would read "[/]" as markup (and raise); an error message is never markup
    r = run(["history", "ETH/USD", "--since", "[/]"], tmp_path, "http://127.0.0.1:1")
    assert r.exit_code == 1 and "--since '[/]'" in r.stderr, r.output


def test_a_missing_config_file_hints_at_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    one_error(run(["--config", str(missing), "pairs"], tmp_path, "http://127.0.0.1:1"),
              f"config file not found: {missing}",
              "check the path given to --config or KMS_CONFIG")

@pytest.mark.slow
def test_output_into_a_pipe_is_never_folded(tmp_path: Path, shared_recording: Path) -> None:
    """A script reads kms's output line by line: into a pipe, with no COLUMNS set, a table row
    is one line however wide (rich would otherwise lay it out at 80 columns)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["KMS_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "krakenstream", "replay", str(shared_recording),
                          "--check"], env=env, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    header = next(r for r in rows if r and r[0] == "pair")
    assert header == ["pair", "frames", "verified", "bad", "crc", "crossed", "best", "bid",
                      "best", "ask", "levels"]
    assert any(r[:4] == ["BTC/USD", "510", "510", "0"] and r[-1] == "10/10" for r in rows)


def test_columns_still_decides_where_it_is_set() -> None:
    console = Console(file=io.StringIO())
    fit_to_output(console, {})
    assert console.width == PIPE_WIDTH
    fit_to_output(console, {"COLUMNS": "120"})
    assert console.width == 120
