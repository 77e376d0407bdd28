"""The reliability suite: faults and abuse against a real daemon, each scenario asserting its
counts (0 5xx, 0 duplicate snapshots, every hole marked, memory bounded) and recording them.

Every test module here sets ``pytestmark = pytest.mark.reliability``: ``scripts/test.sh`` runs
them, the quick loop skips them (``-m "not reliability"``). Run them alone with
``scripts/test.sh tests/reliability -m reliability``.

The figures: a scenario takes the ``figures`` fixture and fills in what it measured::

    def test_broker_outage(figures: Figures) -> None:
        ...
        figures.requests += 1            # every HTTP request the scenario made
        figures.errors_5xx += 1          # ... and those answered 5xx (503 counted apart)
        figures.recovery_s = 2.4         # fault over → serving / storing again
        figures.rss_before_mb = rss_mb(pid)

At the end of the run ``pytest_terminal_summary`` prints one line per scenario and merges
them into ``.reliability-figures.json`` at the repository's root (git-ignored; one entry
per scenario, the last run's), from which RELIABILITY.md's table is filled. A figure left
at ``None`` was not measured by that scenario and prints as ``-``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES_FILE = ROOT / ".reliability-figures.json"
_RECORDED = pytest.StashKey[list["Figures"]]()
_OUTCOME = pytest.StashKey[str]()


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


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """A :class:`Figures` for this test, named after it, recorded for the summary once the
    test is over (with its outcome, so a failed run's figures are never mistaken for a
    passing one's)."""
    fig = Figures(scenario=request.node.name)
    yield fig
    fig.outcome = request.node.stash.get(_OUTCOME, "unknown")
    fig.finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    request.config.stash.setdefault(_RECORDED, []).append(fig)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        item.stash[_OUTCOME] = report.outcome
    return report


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def format_line(f: Figures) -> str:
    return (f"{f.scenario} [{f.outcome}]: requests {f.requests}, 5xx {f.errors_5xx}, "
            f"503 {f.answered_503}, lost {_cell(f.lost)}, marked {_cell(f.marked)}, "
            f"unmarked {_cell(f.unmarked)}, duplicated {_cell(f.duplicated)}, "
            f"recovery {_cell(f.recovery_s)} s, RSS {_cell(f.rss_before_mb)} → "
            f"{_cell(f.rss_after_mb)} MB" + (f"; {f.note}" if f.note else ""))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    recorded = config.stash.get(_RECORDED, [])
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
