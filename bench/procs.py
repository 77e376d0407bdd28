"""What the benchmarks read of the processes they start, and the simulator they start, in one
place (imported by ``bench/feed.py``, ``bench/sim.py`` and ``bench/scale.py``, which run as
scripts with ``bench/`` first on ``sys.path``)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_cpu(pid: int) -> float:
    """User + system seconds of process ``pid`` (every thread of it), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def proc_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB, from /proc."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def start_sim(pairs: int, rate: float, log: IO[str]) -> tuple[subprocess.Popen[str], str]:
    """``kms sim --synthetic PAIRS --rate RATE`` on a free loopback port, and its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "krakenstream", "sim", "--port", "0", "--seed", "1",
         "--synthetic", str(pairs), "--rate", str(rate)],
        stdout=subprocess.PIPE, stderr=log, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("KMS_")},
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("ws://127.0.0.1:"):
        proc.terminate()
        raise SystemExit(f"the simulator did not start (said {url!r})")
    return proc, url
