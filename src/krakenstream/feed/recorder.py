"""Record a live feed: every raw frame as received, one per line, for ``kms replay``.

The file holds the frames exactly as the exchange sent them (status, instrument, acks,
heartbeats, books), in order, so a replay rebuilds and verifies the very same books. A
frame's JSON text never needs a line break: any raw one is whitespace and becomes a space.
The recorder writes from the feed client's ``on_frame`` hook and flushes at most every
``flush_interval`` seconds (and when closed), so a crash loses at most that much.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from ..core.pairs import check_depth, check_pair
from ..errors import FeedError
from .client import FeedClient
from .options import FeedOptions
from .status import ConnectionStatus, PairState, PairStatus

log = logging.getLogger(__name__)

#: consecutive failed connection attempts before ``record`` gives up with an error
RECORD_GIVE_UP_AFTER = 3


class Recorder:
    """Append frames to a file, one per line (use as a context manager)."""

    def __init__(
        self,
        path: Path,
        *,
        flush_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self.frames = 0
        self.bytes = 0
        self._clock = clock
        self._fh: IO[str] | None = None
        self._flushed_at = 0.0

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        self._fh = self.path.open("w", encoding="utf-8", newline="\n")
        self._flushed_at = self._clock()

    def write(self, frame: str) -> None:
        """Append one frame (the feed client's ``on_frame`` hook)."""
        fh = self._fh
        if fh is None:
            raise RuntimeError("Recorder.write before open()")
        if "\n" in frame or "\r" in frame:
            frame = frame.replace("\r", " ").replace("\n", " ")
        fh.write(frame)
        fh.write("\n")
        self.frames += 1
        self.bytes += len(frame) + 1
        now = self._clock()
        if now - self._flushed_at >= self.flush_interval:
            fh.flush()
            self._flushed_at = now

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass(frozen=True, slots=True)
class RecordSummary:
    path: Path
    url: str
    frames: int
    bytes: int
    seconds: float
    pairs: dict[str, PairStatus]
    connection: ConnectionStatus

    def line(self) -> str:
        """The one-line summary ``kms record`` prints."""
        states = ", ".join(
            f"{p} {st.state.value}" + (f" ({st.error})" if st.error else "")
            for p, st in self.pairs.items()
        )
        extra = f", {self.connection.reconnects} reconnect(s)" if self.connection.reconnects else ""
        return (
            f"recorded {self.frames} frames ({_size(self.bytes)}) in {self.seconds:.1f} s "
            f"to {self.path}{extra}; {states}"
        )


async def record(
    pairs: Iterable[str],
    out: Path,
    *,
    options: FeedOptions | None = None,
    url: str | None = None,
    depth: int | None = None,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = False,
) -> RecordSummary:
    """Record ``pairs`` to ``out`` until ``duration`` seconds pass, ``stop`` is set, or (with
    ``handle_signals``) SIGINT/SIGTERM arrives.

    Raises :class:`~krakenstream.errors.BackendUnavailable` if the feed cannot be reached and
    :class:`~krakenstream.errors.FeedError` if the exchange refused every pair.
    """
    options = options or FeedOptions()
    wanted = [check_pair(p) for p in pairs]
    if not wanted:
        raise FeedError("no pair to record", hint="name at least one pair, e.g. BTC/USD")
    options = dataclasses.replace(
        options,
        url=options.url if url is None else url,
        depth=check_depth(options.depth if depth is None else depth),
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    # built first: a bad URL is refused before the file is touched
    client = FeedClient(options, wanted, give_up_after=RECORD_GIVE_UP_AFTER)
    with Recorder(out) as rec:
        client.on_frame = rec.write
        with _signals_set(stop, enabled=handle_signals):
            await client.start()
            stopping = asyncio.create_task(stop.wait(), name="kms-record-stop")
            ended = asyncio.create_task(client.wait_stopped(), name="kms-record-ended")
            try:
                await asyncio.wait({ended, stopping}, timeout=duration,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (stopping, ended):
                    t.cancel()
                await asyncio.gather(stopping, ended, return_exceptions=True)
                await client.stop()  # raises what ended the run (e.g. unreachable)
        summary = RecordSummary(
            path=out,
            url=options.url,
            frames=rec.frames,
            bytes=rec.bytes,
            seconds=loop.time() - started,
            pairs=client.status(),
            connection=client.connection_status(),
        )
    log.info("record done %s", summary.line())
    refused = [st for st in summary.pairs.values() if st.state is PairState.ERROR]
    if refused and len(refused) == len(summary.pairs):
        raise FeedError(
            "the exchange refused every pair: "
            + "; ".join(f"{st.pair}: {st.error}" for st in refused),
            hint=f"the frames so far are in {out}",
        )
    return summary


@contextlib.contextmanager
def _signals_set(stop: asyncio.Event, *, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (a clean stop: file flushed, summary printed)."""
    if not enabled:
        yield
        return
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:.1f} MiB"
