"""What the simulator counts, and the fault kinds it counts by.

Its own module so that every part of the simulator (connections, faults, the market loop)
can bump a counter without importing the server that assembles them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

FaultKind = Literal["drop", "corrupt", "stall", "maintenance"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)


@dataclass
class SimStats:
    """What the simulator did; tests and ``kms sim`` read it."""

    #: connections open now, and ever accepted
    connections: int = 0
    connections_total: int = 0
    frames_sent: int = 0
    book_frames: int = 0
    heartbeats: int = 0
    #: connections cut off because their outbound queue was full
    slow_consumers: int = 0
    #: requests that got an error answer
    errors: int = 0
    #: faults injected, by kind
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))
