"""The reliability scenarios' figures: what a scenario measured (:class:`Figures`), and the
two hooks that gather them from every test's teardown report and print them after the run,
merged into ``.reliability-figures.json``. The hooks are registered by ``tests/conftest.py``,
not by ``tests/reliability/conftest.py``: with pytest-xdist the controller, which prints the
summary, never loads a directory's conftest (its workers collect), and a worker's figures
reach it only as its reports' ``user_properties``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES_FILE = ROOT / ".reliability-figures.json"
_PROPERTY = "reliability_figures"
#: the figures of the scenarios run, in the order their reports arrived
_RECORDED: list[Figures] = []


@dataclass
class Figures:
    """What one scenario measured. Counts start at 0; a figure it does not measure stays
    ``None`` (not applicable), never a guess."""

    scenario: str
    #: HTTP requests (or WebSocket sessions) made against the daemon
    requests: int = 0
    #: of those, answered 5xx other than a documented 503
    errors_5xx: int = 0
    #: documented 503s (a backend down, a slot full: with a message / Retry-After)
    answered_503: int = 0
    #: snapshots that should exist but do not (ticks of a hole), marked or not
    lost: int | None = None
    #: holes whose first row after them says gap_before
    marked: int | None = None
    #: holes nobody marked (must be 0) and marks with no hole (must be 0)
    unmarked: int | None = None
    #: snapshots stored twice (same pair and ts)
    duplicated: int | None = None
    #: seconds from the end of the fault to serving / storing again
    recovery_s: float | None = None
    rss_before_mb: float | None = None
    rss_after_mb: float | None = None
    #: anything else worth a word (what was killed, how long the outage was)
    note: str = ""
    outcome: str = "unknown"
    finished_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def rss_mb(pid: int) -> float:
    """A process's resident set size in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


def gather(report: pytest.TestReport) -> None:
    """``pytest_runtest_logreport``: keep the figures a test's teardown report carries."""
    if report.when != "teardown":
        return
    for name, value in report.user_properties:
        if name == _PROPERTY:
            _RECORDED.append(Figures(**value))


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def format_line(f: Figures) -> str:
    return (f"{f.scenario} [{f.outcome}]: requests {f.requests}, 5xx {f.errors_5xx}, "
            f"503 {f.answered_503}, lost {_cell(f.lost)}, marked {_cell(f.marked)}, "
            f"unmarked {_cell(f.unmarked)}, duplicated {_cell(f.duplicated)}, "
            f"recovery {_cell(f.recovery_s)} s, RSS {_cell(f.rss_before_mb)} → "
            f"{_cell(f.rss_after_mb)} MB" + (f"; {f.note}" if f.note else ""))


def summary(terminalreporter: Any, config: pytest.Config) -> None:
    """``pytest_terminal_summary``: a line per scenario, merged into the JSON file."""
    if hasattr(config, "workerinput"):
        return  # a pytest-xdist worker: its reports went to the controller
    recorded = _RECORDED
    if not recorded:
        return
    terminalreporter.section("reliability figures")
    for f in recorded:
        terminalreporter.write_line(format_line(f))
    try:
        kept = json.loads(FIGURES_FILE.read_text())
    except (OSError, ValueError):
        kept = {}
    kept.update({f.scenario: asdict(f) for f in recorded})
    FIGURES_FILE.write_text(json.dumps(kept, indent=2, sort_keys=True, ensure_ascii=False)
                            + "\n")
    terminalreporter.write_line(f"(merged into {FIGURES_FILE.name})")
