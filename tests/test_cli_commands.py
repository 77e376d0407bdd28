"""The command tree: global options, help panels, completion."""

from __future__ import annotations

from importlib.metadata import version

import typer.main

from cli_support import runner
from krakenstream.cli import app
from krakenstream.cli.commands import ACCOUNTS, DAEMON, DATA, TOOLS


def test_completion_can_be_installed() -> None:
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout


def test_version() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0, r.output
    assert r.stdout == f"kms (krakenstream) {version('krakenstream')}\n"


def test_every_command_is_filed_under_a_panel() -> None:
    root = typer.main.get_command(app)
    panels: dict[str, list[str]] = {}
    for name in root.list_commands(typer.Context(root)):  # type: ignore[attr-defined]
        panel = getattr(root.commands[name], "rich_help_panel", None)  # type: ignore[attr-defined]
        assert panel in (DATA, ACCOUNTS, DAEMON, TOOLS), f"kms {name} has no help panel"
        panels.setdefault(panel, []).append(name)
    # the everyday ones first
    assert list(panels) == [DATA, ACCOUNTS, DAEMON, TOOLS]
    assert panels[DATA][:3] == ["stream", "latest", "history"]
    assert panels[ACCOUNTS][0] == "login" and "register" in panels[ACCOUNTS]
    assert panels[DAEMON] == ["daemon"]
    assert panels[TOOLS][0] == "demo"


def test_help_shows_the_panels_in_order() -> None:
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    titles = [line.split("─ ", 1)[1].split(" ─")[0] for line in r.stdout.splitlines()
              if line.startswith("╭─ ")]
    assert titles == ["Options", DATA, ACCOUNTS, DAEMON, TOOLS]
    r = runner.invoke(app, ["daemon", "--help"], env={"COLUMNS": "100"})
    listed = [line.split()[1] for line in r.stdout.splitlines()
              if line.startswith("│ ") and len(line.split()) > 2
              and line.split()[1] in ("start", "status", "stop", "run")]
    assert listed == ["start", "status", "stop", "run"]
