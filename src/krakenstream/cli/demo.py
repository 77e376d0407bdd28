"""``kms demo``: the whole system on one machine with no network, in one command.

Starts the exchange simulator and a daemon as child processes on free loopback ports, with
every file in a temporary folder (or ``--home``), registers and logs in a demo user, and shows
``kms stream`` in this process. Whatever happens (Ctrl-C, SIGTERM, an error, ``--duration``
running out) the processes it started are stopped, by their pids, before it returns, and the
temporary folder is removed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ..config import Paths
from ..core.pairs import spell_pair
from ..errors import BackendUnavailable, Conflict, InputError, KmsError
from .common import child_error, err_console, errors_handled
from .credentials import Credential, CredentialsFile
from .stream import run_stream

if TYPE_CHECKING:
    from ..client import KmsClient

DEMO_EMAIL = "demo@example.com"
#: seconds for the simulator to listen and for the daemon to answer /health
START_TIMEOUT = 30.0
#: seconds a child gets to exit after SIGTERM before SIGKILL
STOP_GRACE = 10.0
#: how the children are run: this interpreter, this package's CLI
_KMS = [sys.executable, "-m", "krakenstream"]


def free_port() -> int:
    """A port free on loopback right now (the daemon binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(home: Path, **settings: str) -> dict[str, str]:
    """This environment without any ``KMS_*`` of the user (their config, their server), plus
    the demo's own settings: the demo never touches the user's daemon or files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env["KMS_HOME"] = str(home)
    env.update(settings)
    return env


class Child:
    """A process the demo started; stopped by its pid only."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path,
                 *, stdout_pipe: bool = False) -> None:
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.log_offset = out.tell()  # what this child writes begins here
            self.proc = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else out,
                stderr=out,
                start_new_session=True,  # the terminal's Ctrl-C reaches the demo only
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def died(self) -> KmsError:
        """Why it exited: its own error line and hint (not the last line, the hint)."""
        cause, hint = child_error(self.log, self.log_offset)
        return BackendUnavailable(
            f"the demo {self.name} exited with status {self.proc.returncode}"
            + (f": {cause}" if cause else ""),
            hint=f"{hint} (log: {self.log})" if hint else f"see {self.log}",
        )

    def read_line(self, timeout: float) -> str:
        """The first line the child prints (the simulator prints its URL once listening)."""
        assert self.proc.stdout is not None
        stdout: IO[bytes] = self.proc.stdout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], 0.1)
            if ready:
                line = stdout.readline().decode(errors="replace").strip()
                if line:
                    return line
            if not self.alive():
                raise self.died()
        raise BackendUnavailable(f"the demo {self.name} did not start within {timeout:g} s",
                                 hint=f"see {self.log}")

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def wait_healthy(client: KmsClient, daemon: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not daemon.alive():
            raise daemon.died()
        try:
            # our child's answer, not another process's on the same port
            if client.health().get("pid") == daemon.proc.pid:
                return
        except BackendUnavailable:
            if time.monotonic() >= deadline:
                raise BackendUnavailable(
                    f"the demo daemon did not answer at {client.base_url} within {timeout:g} s",
                    hint=f"see {daemon.log}",
                ) from None
        if time.monotonic() >= deadline:
            raise BackendUnavailable(
                f"another process answers at {client.base_url}, not the demo daemon",
                hint=f"see {daemon.log}")
        time.sleep(0.1)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C does, so the cleanup runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def demo(
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.0, help="Stop after this many seconds (default: "
                     "until Ctrl-C)."),
    ] = None,
    pairs: Annotated[
        str, typer.Option("--pairs", help="Pairs to show, comma-separated.")
    ] = "ETH/USD,BTC/USD",
    depth: Annotated[int, typer.Option("--depth", min=1, max=100, help="Levels per side.")] = 10,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Keep the demo's files (databases, logs) in this folder "
                     "instead of a temporary one removed at the end."),
    ] = None,
) -> None:
    """Run the simulator, a daemon and a live view on loopback: no network, no setup."""
    with errors_handled():
        wanted = [spell_pair(p) for p in pairs.split(",") if p.strip()]
        if not wanted:
            raise InputError("--pairs: give at least one pair, e.g. ETH/USD")
        temporary = home is None
        root = Path(tempfile.mkdtemp(prefix="kms-demo-")) if home is None else home.resolve()
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        children: list[Child] = []
        try:
            with _sigterm_interrupts():
                _run(root, wanted, depth, duration, children)
        except KeyboardInterrupt:
            pass
        finally:
            for child in reversed(children):  # the daemon first, then its exchange
                child.stop()
            if temporary:
                shutil.rmtree(root, ignore_errors=True)
        err_console.print("[dim]demo stopped; everything it started is gone[/]")


def _run(root: Path, pairs: list[str], depth: int, duration: float | None,
         children: list[Child]) -> None:
    import asyncio

    from ..client import KmsClient

    sim = Child("simulator", [*_KMS, "sim", "--port", "0", "--pairs", ",".join(pairs)],
                child_env(root), root / "demo-sim.log", stdout_pipe=True)
    children.append(sim)
    sim_url = sim.read_line(START_TIMEOUT)
    if not sim_url.startswith("ws://"):
        raise BackendUnavailable(f"the demo simulator printed {sim_url!r}, not its URL",
                                 hint=f"see {sim.log}")
    port = free_port()
    env = child_env(
        root,
        KMS_KRAKEN_URL=sim_url,
        KMS_KRAKEN_PAIRS=",".join(pairs),
        KMS_GATEWAY_HOST="127.0.0.1",
        KMS_GATEWAY_PORT=str(port),
        KMS_AUTH_BCRYPT_COST="10",
    )
    daemon = Child("daemon", [*_KMS, "daemon", "run"], env, root / "demo-daemon.log")
    children.append(daemon)
    url = f"http://127.0.0.1:{port}"
    with KmsClient(url) as client:
        wait_healthy(client, daemon, START_TIMEOUT)
        password = secrets.token_urlsafe(18)
        email = DEMO_EMAIL
        try:
            client.register(email, password)
        except Conflict:  # a --home used before: its demo user's password is long gone
            email = f"demo-{secrets.token_hex(4)}@example.com"
            client.register(email, password)
        answer = client.login(email, password)
        expires = answer.get("expires_at")
        CredentialsFile(Paths.from_env({"KMS_HOME": str(root)}).credentials_file).save(
            url, Credential(email, answer["token"],
                            expires if isinstance(expires, str) else None))
        home = escape(str(root))  # a folder name is text, not rich markup
        err_console.print(
            f"[bold]kms demo[/]: simulator {sim_url}, daemon {url}, files in {home}\n"
            f"[dim]logged in as {email}; meanwhile, in another terminal: "
            f"kms --home {home} history {escape(pairs[0])} --server {url}[/]\n"
            f"[dim]dashboard: {url}/ (kms --home {home} open --server {url}); sign in as "
            f"{email}, password {password} (this demo's throwaway account)[/]",
            soft_wrap=True,
        )
        asyncio.run(run_stream(client, pairs, depth=depth, duration=duration))
