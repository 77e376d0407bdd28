"""A local exchange that speaks Kraken's WebSocket v2 on loopback.

:mod:`.specs` lists the instruments, :mod:`.walk` moves each pair's book (a seeded random
walk), :mod:`.market` turns its steps into Kraken's book frames (pure, all three);
:mod:`.replay` prepares a recorded file; :mod:`.protocol` answers requests (sans-I/O);
:mod:`.connection` queues each client's frames; :mod:`.loops` sends market updates,
heartbeats and replays; :mod:`.faults` injects faults; :mod:`.server` assembles them over
``websockets``.
"""

from __future__ import annotations

from .market import (
    DEFAULT_PAIRS,
    BookStream,
    Market,
    PairBook,
    PairSpec,
    guess_spec,
    synthetic_specs,
)
from .server import SimServer
from .stats import FAULT_KINDS, FaultKind, SimStats

__all__ = [
    "DEFAULT_PAIRS",
    "FAULT_KINDS",
    "BookStream",
    "FaultKind",
    "Market",
    "PairBook",
    "PairSpec",
    "SimServer",
    "SimStats",
    "guess_spec",
    "synthetic_specs",
]
