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

import time
from collections.abc import Generator, Iterator
from dataclasses import asdict

import pytest

from .figures import _PROPERTY, Figures, rss_mb

__all__ = ["Figures", "rss_mb"]

_OUTCOME = pytest.StashKey[str]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """A :class:`Figures` for this test, named after it, recorded for the summary once the
    test is over (with its outcome, so a failed run's figures are never mistaken for a
    passing one's)."""
    fig = Figures(scenario=request.node.name)
    yield fig
    fig.outcome = request.node.stash.get(_OUTCOME, "unknown")
    fig.finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # carried by the test's teardown report: in this process, or from a pytest-xdist worker
    # to the controller, which prints the summary
    request.node.user_properties.append((_PROPERTY, asdict(fig)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        item.stash[_OUTCOME] = report.outcome
    return report


