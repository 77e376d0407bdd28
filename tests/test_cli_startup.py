"""What every ``kms`` command pays before it runs: the command tree imports no heavy module.

Each ``kms`` process (and ``python -m krakenstream``, the way the daemon starts itself) first
imports :mod:`krakenstream.cli`, and ``kms --help`` / ``--version`` build every command's
options. Neither may pull in what only some commands need: the command modules import those
in the functions that use them (``if TYPE_CHECKING:`` for annotations). Each case runs in a
fresh interpreter, since this test process has imported everything already. The time it
saves is measured by ``bench/cli_startup.py`` (BENCHMARKS.md), not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: never imported by the command tree, and why each is left to the commands that use it
NOT_AT_START = {
    "pyarrow": "kms export --parquet's reader (with numpy: ~0.3 s)",
    "numpy": "pyarrow's, as above",
    "httpx": "the client: only commands that talk to a daemon open it",
    "websockets": "the client's stream: kms stream and kms demo",
    "krakenstream.client": "httpx and websockets, as above",
    "bcrypt": "the users store: kms user add --local only",
    "jwt": "the users package's tokens, as above",
    "email_validator": "the users package's address check, as above",
    "krakenstream.users": "all three, as above",
    "krakenstream.store": "the SQLite/MySQL/Redis stores and the Parquet archive: the daemon's",
    "sqlite3": "the SQLite stores', as above",
    "krakenstream.daemon": "kms daemon run's own (FastAPI, uvicorn, every backend)",
    "fastapi": "the daemon's gateway, as above",
    "krakenstream.sim": "kms sim's exchange",
    "krakenstream.feed": "kms record's (and the daemon's) Kraken connections",
    "krakenstream.core.replay": "kms replay's books and parser",
    "asyncio": "the event loop (with ssl and socket: ~25 ms), for the commands that run one",
}

#: run in a fresh interpreter: prints the modules loaded after the statements given
PROBE = """\
import json, sys
{code}
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(code=code)], check=True,
                          capture_output=True, text=True, timeout=60)
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy(modules: set[str]) -> dict[str, str]:
    return {name: why for name, why in NOT_AT_START.items()
            if any(m == name or m.startswith(name + ".") for m in modules)}


@pytest.mark.parametrize("code", [
    pytest.param("import krakenstream.cli", id="import"),  # ~0.2 s: in the quick loop
    # --help and --version build every command's parameters from its signature (~0.4 s)
    pytest.param("from typer.testing import CliRunner\n"
                 "from krakenstream.cli import app\n"
                 "for args in (['--help'], ['--version'], ['daemon', '--help'],\n"
                 "             ['user', '--help']):\n"
                 "    assert CliRunner().invoke(app, args).exit_code == 0, args",
                 id="help-and-version", marks=pytest.mark.slow),
])
def test_the_command_tree_imports_nothing_heavy(code: str) -> None:
    modules = loaded_after(code)
    assert "krakenstream.cli.commands" in modules  # the probe ran what it should
    assert heavy(modules) == {}


@pytest.mark.slow
def test_the_probe_sees_a_heavy_import(tmp_path: Path) -> None:
    """The check above can fail: a command that runs imports what it needs (here the
    client, asking a loopback port where nothing listens)."""
    modules = loaded_after(
        "from typer.testing import CliRunner\n"
        "from krakenstream.cli import app\n"
        "r = CliRunner().invoke(app, ['whoami', '--server', 'http://127.0.0.1:9'],\n"
        f"                      env={{'KMS_HOME': {str(tmp_path)!r}}})\n"
        "assert 'cannot reach' in r.output, r.output")
    assert {"httpx", "krakenstream.client"} <= set(heavy(modules))
