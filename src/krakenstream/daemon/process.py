"""The daemon as a process: its pid lock, its signals, its log lines and the uvicorn server
that carries the gateway role (the HTTP app itself is :mod:`.gateway`; the roles and backends
are :mod:`.services`).

``Daemon.run()`` runs in the foreground until SIGTERM/SIGINT, then drains in data-flow order
(stop publishing, flush the bus, store what arrived, close the bus, then the stores: see
:meth:`.Services.close`) and returns. A second daemon on the same state directory is
refused: the pid file is held with an exclusive ``flock`` for the daemon's whole life, so a
crashed daemon never leaves a stale lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..config import Settings, env_name, local_url
from ..errors import KmsError
from .gc_policy import GcPolicy
from .services import Services, build_services, check_roles

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class DaemonError(KmsError):
    """The daemon cannot start (already running, port taken...)."""


def setup_logging(level: str, stream: IO[str] | None = None) -> None:
    """One line per event, to stderr (``kms daemon start`` points stderr at the log file)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # libraries that are chatty at INFO
    for name in ("aiokafka", "websockets", "uvicorn.access", "kafka"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class StateLock:
    """An exclusive lock on ``<state dir>/daemon.pid``, holding the daemon's pid on its first
    line, then (once known, :meth:`note`) its roles and the URL of its own ``/health``, so that
    ``kms daemon status`` asks this process and no other (see :func:`read_state`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the daemon's life
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.seek(0)
            other = fh.readline().strip() or "?"
            fh.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise DaemonError(
                    f"a daemon is already running on {self.path.parent} (pid {other})",
                    hint="kms daemon stop, or give this one its own KMS_HOME / --home",
                ) from None
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def note(self, roles: Sequence[str], health_url: str | None) -> None:
        """Add the roles and where this process answers ``/health`` (None: nowhere, a process
        without a gateway nor ``daemon.health_port``) under the pid, in one write."""
        if self._fh is None:
            return
        text = (f"{os.getpid()}\nroles={','.join(roles)}\n"
                f"health={health_url or '-'}\n").encode()
        # the lock's own handle appends (a+): write from the start through another one; the
        # pid line stays where it was, so a reader never sees a file without it
        with open(self.path, "r+b") as out:
            out.write(text)
            out.truncate()

    def release(self) -> None:
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._fh.close()
        self._fh = None


@dataclass(frozen=True, slots=True)
class DaemonState:
    """What the daemon holding a state directory wrote in its pid file."""

    pid: int
    #: its roles, None until it has noted them (just started, or an older version)
    roles: tuple[str, ...] | None = None
    #: where it answers /health: its gateway, its health listener, or None when nowhere
    health_url: str | None = None

    @property
    def noted(self) -> bool:
        return self.roles is not None


def read_state(path: Path) -> DaemonState | None:
    """The daemon holding the lock on a pid file and what it noted there, else None."""
    try:
        with open(path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                lines = fh.read().splitlines()
            else:
                fcntl.flock(fh, fcntl.LOCK_UN)
                return None  # nobody holds it: a leftover file
    except FileNotFoundError:
        return None
    if not lines or not lines[0].strip().isdigit():
        return None
    fields = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    if "roles" not in fields or "health" not in fields:
        return DaemonState(int(lines[0]))
    url = fields["health"].strip()
    return DaemonState(int(lines[0]), tuple(r for r in fields["roles"].split(",") if r),
                       None if url in ("", "-") else url)


def read_pid(path: Path) -> int | None:
    """The pid in a pid file if that process holds the lock, else None."""
    state = read_state(path)
    return None if state is None else state.pid


def bind_socket(host: str, port: int, setting: str = "gateway.port") -> socket.socket:
    """Bind the gateway's (or the health listener's) socket ourselves so a taken port is a
    clear error, not an exit; ``setting`` is what the hint names.

    The protocol is named (``IPPROTO_TCP``, not the default 0): asyncio turns Nagle's
    algorithm off (``TCP_NODELAY``) only on connections whose socket says TCP, and uvicorn
    writes an answer's headers and body in two sends. With Nagle on, the body waited for the
    client's delayed ACK of the headers: every request after the first on a kept-alive
    connection took 40 ms more (45 ms for ``/health``, 2 ms on a new connection).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DaemonError(
                f"port {port} on {host} is already in use",
                hint=f"stop what uses it, or set {setting} / {env_name(setting)}",
            ) from None
        raise DaemonError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class Daemon:
    def __init__(self, settings: Settings, roles: Sequence[str] | None = None) -> None:
        self.settings = settings
        self.roles = check_roles(settings.daemon.roles if roles is None else roles)
        self.services: Services | None = None
        self._stop = asyncio.Event()
        #: the gateway's port, or the health listener's in a process without a gateway
        self.port: int | None = None
        self.health_port: int | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, on_ready: Callable[[Daemon], Any] | None = None) -> None:
        s = self.settings
        s.paths.ensure()
        lock = StateLock(s.paths.pid_file)
        lock.acquire()
        sock: socket.socket | None = None
        server: Any = None
        server_task: asyncio.Task[None] | None = None
        gc_task: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.request_stop)
                    installed.append(sig)
            health_only = "gateway" not in self.roles
            if not health_only:
                sock = bind_socket(s.gateway.host, s.gateway.port)
                self.port = sock.getsockname()[1]
            elif s.daemon.health_port:
                # no gateway here: /health and /metrics on a listener of their own
                sock = bind_socket(s.daemon.health_host, s.daemon.health_port,
                                   "daemon.health_port")
                self.health_port = sock.getsockname()[1]
            lock.note(self.roles, local_url(s.gateway.host, self.port) if self.port
                      else local_url(s.daemon.health_host, self.health_port)
                      if self.health_port else None)
            self.services = await build_services(s, self.roles)
            if sock is not None:
                server = _make_server(self.services, health_only=health_only)
                server_task = asyncio.create_task(server.serve(sockets=[sock]),
                                                  name="kms-gateway")
                await _started(server, server_task)
            log.info("daemon ready pid=%d roles=%s gateway=%s%s", os.getpid(),
                     ",".join(self.roles),
                     f"http://{s.gateway.host}:{self.port}" if self.port else "-",
                     f" health=http://{s.daemon.health_host}:{self.health_port}"
                     if self.health_port else "")
            gc_task = asyncio.create_task(GcPolicy().run(), name="kms-gc")
            if on_ready is not None:
                on_ready(self)
            await self._stop.wait()
            log.info("daemon stopping: draining")
        finally:
            if gc_task is not None:
                gc_task.cancel()
                await asyncio.gather(gc_task, return_exceptions=True)
            if server is not None:
                server.should_exit = True
                if server_task is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(server_task, timeout=10)
            if self.services is not None:
                await self.services.close()
            if sock is not None:
                sock.close()
            for sig in installed:
                loop.remove_signal_handler(sig)
            lock.release()
            log.info("daemon stopped")


async def _started(server: Any, task: asyncio.Task[None]) -> None:
    """Wait (up to 30 s) for uvicorn to have started, or raise what stopped it."""
    for _ in range(3000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()  # raises what stopped it
    if not server.started:
        raise DaemonError("the gateway did not start within 30 s")


def _make_server(services: Services, *, health_only: bool = False) -> Any:
    """The gateway's uvicorn server: no signal handling of its own (the daemon's), no access
    log (the gateway logs one line per request), WebSocket clients closed with 1001. With
    ``health_only``, the health listener of a process without a gateway: ``/health`` and
    ``/metrics`` only, on ``daemon.health_host:daemon.health_port``."""
    from .gateway import create_health_app, make_server

    if health_only:
        return make_server(services, host=services.settings.daemon.health_host,
                           port=services.settings.daemon.health_port,
                           app=create_health_app(services))
    return make_server(services)
