"""A local exchange that speaks Kraken's WebSocket v2 on loopback.

:mod:`.market` holds the pure random-walk books and turns them into Kraken's book frames;
:mod:`.replay` prepares a recorded file; :mod:`.server` serves either over ``websockets``,
with injectable faults.
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
from .server import FAULT_KINDS, FaultKind, SimServer, SimStats

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
