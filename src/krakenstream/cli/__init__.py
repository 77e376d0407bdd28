"""``kms``, the command line: one package, one module per command group.

- :mod:`.commands` builds the typer app: the global options and every command, each filed
  under a help panel. A new command is a function in its own module here, registered there
  in one line.
- :mod:`.common` is the error boundary (an expected failure is one line and a hint, never a
  traceback) and the settings; :mod:`.server` picks the daemon and opens the client;
  :mod:`.options` holds the options several commands share; :mod:`.credentials` keeps the
  tokens.
- :mod:`.render` and :mod:`.live` build what is shown and never print (pure, tested at a
  given width); the command modules print it.

Every ``kms`` process imports all of this package first, so its modules import at the top
only what their signatures and the help need (typer, rich, the settings, ``core``'s rules);
the client (httpx, websockets), pyarrow, the users package, the simulator, the feed, the
daemon and asyncio are imported in the functions that use them, and ``if TYPE_CHECKING:`` for
annotations. ``tests/test_cli_startup.py`` holds the list; ``bench/cli_startup.py`` the time.
"""

from __future__ import annotations

from .commands import app, main

__all__ = ["app", "main"]
