"""Background tasks that nobody awaits until shutdown must say at once when they die.

:func:`died` tells ``/health`` that such a task is gone. One done-callback for the feed
client, the publish ticker and the analysis role: an expected
failure (a :class:`~krakenstream.errors.KmsError`, e.g. a feed that gave up connecting) is one
WARNING line with its message, since whoever awaits the task reports it to the user as well
(``kms record`` prints it once, as its error line); anything else is a bug and is logged at
ERROR with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .errors import KmsError


def died(task: asyncio.Task[Any] | None) -> str | None:
    """Why a task meant to run until it is stopped is no longer running (its exception, or
    "it returned"), or None while it runs (or was never started, or was cancelled)."""
    if task is None or not task.done() or task.cancelled():
        return None
    exc = task.exception()
    return "it returned" if exc is None else f"{type(exc).__name__}: {exc}"


def report_failure(log: logging.Logger, what: str) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback logging ``what`` if the task ended with an exception."""

    def callback(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, KmsError):
            log.warning("%s: %s", what, exc)
        else:
            log.error("%s: %s: %s", what, type(exc).__name__, exc, exc_info=exc)

    return callback
