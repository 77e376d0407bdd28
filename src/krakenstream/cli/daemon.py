"""``kms daemon run|start|stop|status``: the local daemon in the foreground or background."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import server_url
from ..core.pairs import normalize_selector
from .common import child_env, child_error, errors_handled, fail, out_console, settings
from .render import format_status

daemon_app = typer.Typer(help="Run, start, stop and inspect the local daemon.",
                         no_args_is_help=True)

RolesOpt = Annotated[
    str | None,
    typer.Option("--roles", help="Comma-separated roles: orderbook,analysis,gateway "
                 "(default: daemon.roles)."),
]
PortOpt = Annotated[int | None, typer.Option("--port", help="Gateway port (gateway.port).")]
HostOpt = Annotated[str | None, typer.Option("--host", help="Gateway address (gateway.host).")]
PairsOpt = Annotated[
    str | None, typer.Option("--pairs", help="Comma-separated pairs or patterns: BTC/USD, "
                             "'*/USD', 'BTC/*', '*' (kraken.pairs).")
]
UrlOpt = Annotated[str | None, typer.Option("--url", help="Kraken WebSocket URL (kraken.url).")]


def _overrides(roles: str | None, host: str | None, port: int | None, pairs: str | None,
               url: str | None) -> dict[str, Any]:
    return {"daemon.roles": roles, "gateway.host": host, "gateway.port": port,
            "kraken.pairs": normalize_pairs(pairs), "kraken.url": url}


def normalize_pairs(text: str | None) -> list[str] | None:
    """``--pairs eth-usd,BTC/USD,*-eur`` → ``["ETH/USD", "BTC/USD", "*/EUR"]``: typed as
    everywhere else in kms; a name that is no pair nor pattern is refused here, naming it."""
    if text is None:
        return None
    return [normalize_selector(p) for p in text.split(",") if p.strip()]


def run(roles: RolesOpt = None, host: HostOpt = None, port: PortOpt = None,
        pairs: PairsOpt = None, url: UrlOpt = None) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT (then drain and exit 0)."""
    import asyncio

    from ..daemon.gc_policy import limit_malloc_arenas
    from ..daemon.process import Daemon, setup_logging

    with errors_handled():
        s = settings(_overrides(roles, host, port, pairs, url))
        setup_logging(s.daemon.log_level)
        limit_malloc_arenas()  # before the daemon starts its threads
        daemon = Daemon(s)
        asyncio.run(daemon.run())


def start(roles: RolesOpt = None, host: HostOpt = None, port: PortOpt = None,
          pairs: PairsOpt = None, url: UrlOpt = None,
          wait: Annotated[float, typer.Option(help="Seconds to wait for /health.")] = 30.0,
          ) -> None:
    """Start the daemon in the background (pid and log files in the state directory)."""
    from ..daemon.process import read_pid

    with errors_handled():
        s = settings(_overrides(roles, host, port, pairs, url))
        s.paths.ensure()
        pid = read_pid(s.paths.pid_file)
        if pid is not None:
            raise fail(f"a daemon is already running (pid {pid})", "kms daemon status")
        cmd = [sys.executable, "-m", "krakenstream", "daemon", "run"]
        for flag, value in (("--roles", roles), ("--host", host), ("--port", port),
                            ("--pairs", pairs), ("--url", url)):
            if value is not None:
                cmd += [flag, str(value)]
        log_file = s.paths.log_file
        with open(log_file, "ab") as log:
            offset = log.tell()  # what this start writes begins here
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=child_env())
        gateway = "gateway" in s.daemon.roles if roles is None else "gateway" in roles
        deadline = time.monotonic() + wait
        other: object = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                message, hint = child_error(log_file, offset)
                raise fail(message or f"the daemon exited at once (status {proc.returncode})",
                           f"{hint} (log: {log_file})" if hint else f"see {log_file}")
            if not gateway and read_pid(s.paths.pid_file) == proc.pid:
                break
            if gateway:
                # the child's own gateway, not another daemon that answers on this port
                answer = _health(server_url(s))
                if answer is not None and answer.get("pid") == proc.pid:
                    break
                if answer is not None:
                    other = answer.get("pid", "?")
            time.sleep(0.1)
        else:
            why = f" (another daemon, pid {other}, answers there)" if other is not None else ""
            raise fail(f"the daemon did not answer within {wait:g} s{why}", f"see {log_file}")
        out_console.print(f"daemon started (pid {proc.pid})"
                          + (f", gateway {server_url(s)}" if gateway else "")
                          + f"; log: {log_file}")


def stop(wait: Annotated[float, typer.Option(help="Seconds to wait for it to exit.")] = 20.0,
         ) -> None:
    """Stop the background daemon (SIGTERM: it drains, then exits)."""
    from ..daemon.process import read_pid

    with errors_handled():
        s = settings()
        pid = read_pid(s.paths.pid_file)
        if pid is None:
            raise fail("no daemon is running", "kms daemon start")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            # the lock is released once it has drained, a moment before the process ends:
            # wait for both, so that what follows (a new start, a backend stopped) finds it gone
            if read_pid(s.paths.pid_file) is None and _exited(pid):
                out_console.print(f"daemon stopped (pid {pid})")
                return
            time.sleep(0.1)
        raise fail(f"the daemon (pid {pid}) did not stop within {wait:g} s",
                   f"kill -9 {pid} if it is stuck; see {s.paths.log_file}")


def status(json_out: Annotated[bool, typer.Option("--json", help="Print the health JSON.")]
           = False) -> None:
    """Is the daemon running, and how are its feeds, bus and store?"""
    from ..daemon.process import read_state

    with errors_handled():
        s = settings()
        state = read_state(s.paths.pid_file)
        pid = None if state is None else state.pid
        roles = None if state is None else state.roles
        if state is not None and state.noted:
            # the process holding this state directory said where its own /health is (its
            # gateway, its health listener, or nowhere): ask there, never another daemon
            url = state.health_url
        else:
            url = server_url(s)
        health = _health(url) if url is not None else None
        other = None
        if health is not None and pid is not None and health.get("pid") != pid:
            # another process answers there (a gateway sharing the environment): not ours
            other, health = health.get("pid", "?"), None
        if json_out:
            import orjson

            typer.echo(orjson.dumps({"pid": pid, "roles": roles, "url": url, "health": health},
                                    option=orjson.OPT_INDENT_2).decode())
            if pid is None and health is None:
                raise typer.Exit(1)
            return
        if pid is None and health is None:
            raise fail(f"no daemon is running here, and none answers at {url}",
                       "kms daemon start")
        out_console.print(format_status(pid, url, health, roles=roles, other=other),
                          markup=False)


def _exited(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie that its new parent has not reaped yet,
    as a detached daemon may be in a container without an init, has ended too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS): the signal's answer is all there is
    return stat.rsplit(")", 1)[-1].split()[:1] in (["Z"], ["X"])


def _health(url: str) -> dict[str, Any] | None:
    import httpx

    try:
        r = httpx.get(url + "/health", timeout=2.0)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    try:
        data = r.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# in the order ``kms daemon --help`` lists them: the everyday ones first
daemon_app.command("start")(start)
daemon_app.command("status")(status)
daemon_app.command("stop")(stop)
daemon_app.command("run")(run)
