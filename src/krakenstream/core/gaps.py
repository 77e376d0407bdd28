"""The gap rule: is a stored snapshot's stored predecessor its true predecessor?

A gap is derived when history is READ, from the stored neighbours, never only trusted from
what a writer decided: a snapshot lost on the bus, by a broker, in a restart or in a shard
handover leaves a hole that the reader sees, and a late redelivery that fills the hole makes
the mark go away by itself (the earlier write-time attempt could not tolerate reordering).

A snapshot is marked ``gap_before`` when any of these holds:

* its publisher said so (the published ``gap_before`` flag: stale, resync, error, restart);
* it has a stored predecessor from another publisher (``origin`` differs);
* its stored predecessor's ``seq`` is not its own ``seq - 1``.

The very first snapshot stored of a pair (no predecessor at all) is marked only by its
published flag: there is nothing before it that history claims to continue.

Every reader applies this one rule: the window store, the Parquet archive and the history
that spans both (so an answer reads the same wherever its rows came from).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Sequenced(Protocol):
    """What the rule reads of a snapshot (a :class:`~.snapshot.Snapshot` has all of it)."""

    @property
    def seq(self) -> int: ...

    @property
    def origin(self) -> str: ...

    @property
    def gap_before(self) -> bool: ...


def follows(previous: Sequenced | None, snap: Sequenced) -> bool:
    """Whether ``snap`` continues ``previous`` without a hole (None: nothing stored before)."""
    if snap.gap_before:
        return False
    if previous is None:
        return True
    return previous.origin == snap.origin and snap.seq == previous.seq + 1


def mark_gaps(snapshots: Iterable[Sequenced], previous: Sequenced | None = None) -> list[bool]:
    """The ``gap_before`` mark of each snapshot, given in time order (oldest first) and
    preceded by ``previous``, the stored snapshot just before the first (None if none)."""
    marks: list[bool] = []
    for snap in snapshots:
        marks.append(not follows(previous, snap))
        previous = snap
    return marks
