"""``tasks``: why a background task is no longer running, and how its death is logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from krakenstream.errors import FeedError
from krakenstream.tasks import died, report_failure


async def _ended(coro: object) -> asyncio.Task[None]:
    task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
    await asyncio.wait({task})
    return task


async def _boom(exc: BaseException) -> None:
    raise exc


async def _fine() -> None:
    return None


async def test_died_says_why_only_once_a_task_has_ended() -> None:
    assert died(None) is None  # never started
    forever = asyncio.create_task(asyncio.Event().wait())
    assert died(forever) is None  # still running
    forever.cancel()
    await asyncio.gather(forever, return_exceptions=True)
    assert died(forever) is None  # cancelled: stopped on purpose
    assert died(await _ended(_fine())) == "it returned"
    assert died(await _ended(_boom(ValueError("bad frame")))) == "ValueError: bad frame"


async def test_an_expected_failure_is_one_warning_line_a_bug_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.tasks")
    caplog.set_level(logging.DEBUG, logger="test.tasks")
    callback = report_failure(log, "feed client")
    callback(await _ended(_fine()))
    cancelled = asyncio.create_task(asyncio.Event().wait())
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    callback(cancelled)
    assert caplog.records == []  # returning or being cancelled is no failure

    callback(await _ended(_boom(FeedError("gave up connecting"))))
    callback(await _ended(_boom(KeyError("pair"))))
    (expected, bug) = caplog.records
    assert (expected.levelno, expected.getMessage()) == (
        logging.WARNING, "feed client: gave up connecting")
    assert expected.exc_info is None
    assert (bug.levelno, bug.getMessage()) == (logging.ERROR, "feed client: KeyError: 'pair'")
    assert bug.exc_info is not None and isinstance(bug.exc_info[1], KeyError)
