"""The error boundary every command runs in: one line and a hint, the traceback only with
``--verbose``, and what was typed shown as typed (never read as markup)."""

from __future__ import annotations

from pathlib import Path

from cli_support import one_error, run
from conftest import free_port
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
