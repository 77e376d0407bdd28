"""What every ``kms`` command shares: global options, settings, and the error boundary.

Commands call :func:`settings` for their configuration and wrap their body in
:func:`errors_handled`, which turns an expected failure into one line plus a hint on stderr
and a non-zero exit; ``--verbose`` (or ``KMS_VERBOSE=1``) adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ..config import (
    Settings,
    child_environment,
    env_flag,
    load_settings,
    set_home,
    terminal_columns,
)
from ..errors import KmsError


@dataclass
class GlobalOptions:
    config: Path | None = None
    verbose: bool = False
    #: ``kms --server URL ...``: the daemon for whichever command follows
    server: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


_options = GlobalOptions()
err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)
#: the width kms lays its output out at when it goes to a pipe or a file and COLUMNS is not
#: set: a line is a record to whatever reads it, so it is never folded (rich would use 80)
PIPE_WIDTH = 100_000


def fit_to_output(console: Console, env: Mapping[str, str] | None = None) -> None:
    """A terminal keeps its own width; elsewhere ``COLUMNS`` if set, else :data:`PIPE_WIDTH`."""
    if console.is_terminal:
        return
    console.width = terminal_columns(env) or PIPE_WIDTH


def _show_version(value: bool) -> None:
    if value:
        # the package's own attribute, which pyproject.toml's version is read from: the
        # installed metadata would cost importlib.metadata's import (~35 ms) for the same text
        from .. import __version__

        typer.echo(f"kms (krakenstream) {__version__}")
        raise typer.Exit()


def root_options(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Folder for every file kms writes (same as KMS_HOME)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML config file (default: KMS_CONFIG or "
                     "<config dir>/config.toml)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show details (tracebacks) on errors.")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option("--server", metavar="URL", show_default=False,
                     help="Daemon's gateway URL for the command that follows (same as "
                     "KMS_SERVER; the command's own --server wins)."),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True,
                     help="Show the version and exit."),
    ] = False,
) -> None:
    """krakenstream: exact, checksum-verified Kraken order books."""
    if home is not None:
        set_home(home)  # for this process and the processes it starts
    _options.config = config
    _options.verbose = verbose or env_flag("KMS_VERBOSE")
    _options.server = server
    for console in (out_console, err_console):
        fit_to_output(console)


def child_env() -> dict[str, str]:
    """The environment for a kms child process: ours, plus ``--config`` as KMS_CONFIG."""
    return child_environment(config_file=_options.config)


def verbose() -> bool:
    return _options.verbose


def global_server() -> str | None:
    """``--server`` given before the command (``kms --server URL whoami``), if any."""
    return _options.server


def settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from defaults < file < environment < CLI ``overrides`` (``{"section.key": v}``;
    None values are ignored, so unset flags can be passed straight through)."""
    return load_settings(_options.config, overrides=overrides)


def fail(message: str, hint: str | None = None, code: int = 1) -> typer.Exit:
    # a message quotes what the user typed or the daemon said: text, never rich markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        err_console.print(f"[dim]hint:[/] {escape(hint)}", soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def errors_handled() -> Iterator[None]:
    """The CLI's error boundary: KmsError → one line + hint, exit 1; never a traceback."""
    try:
        yield
    except KmsError as exc:
        if _options.verbose:
            traceback.print_exc(file=sys.stderr)
        raise fail(str(exc), exc.hint) from None
    except OSError as exc:
        if _options.verbose:
            traceback.print_exc(file=sys.stderr)
        where = f": {exc.filename}" if exc.filename else ""
        raise fail(f"{exc.strerror or exc}{where}") from None


def child_error(path: Path, offset: int = 0) -> tuple[str, str | None]:
    """Why a background daemon that exited at once failed: the ``error:`` line it printed
    (its cause) and the ``hint:`` after it, read from its log past ``offset``; else the last
    line it wrote (a traceback's last line names the exception), and no hint."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return "", None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("error: "):
            after = lines[i + 1] if i + 1 < len(lines) else ""
            hint = after.removeprefix("hint: ") if after.startswith("hint: ") else None
            return lines[i].removeprefix("error: "), hint
    return (lines[-1] if lines else ""), None
