"""Where exports go: stdout, or a file that appears under its name only once complete.

A file is written as ``.<name>.part`` beside its final name and renamed into place at the
end, so an interrupted export (Ctrl-C, the daemon gone) never leaves half a file under the
name asked for. Long exports show a progress bar on stderr (the data goes to stdout or the
file, never mixed with it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import typer

from ..errors import InputError
from .common import err_console

#: exports at least this long get a progress bar even when their size is unknown
PROGRESS_MIN_ROWS = 1_000


def count_rows(chunk: bytes) -> int:
    """Lines in a chunk of CSV or NDJSON (no field of ours holds a line break)."""
    return chunk.count(b"\n")


def file_for(dest: str, example: str) -> Path:
    """The export's file, refused if it is a folder."""
    path = Path(dest).expanduser()
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name", hint=f"e.g. {example}")
    return path


def to_stdout(chunks: Iterable[bytes]) -> None:
    out = typer.get_binary_stream("stdout")
    for chunk in chunks:
        out.write(chunk)
    out.flush()


@contextlib.contextmanager
def into_file(path: Path) -> Iterator[Any]:
    """A binary file object that becomes ``path`` if the block ends without an error."""
    part = path.with_name(f".{path.name}.part")
    try:
        with part.open("wb") as fh:
            yield fh
        os.replace(part, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()


@contextlib.contextmanager
def progress(total: int | None, what: str = "exporting") -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long exports; a no-op for short or unknown ones."""
    if total is not None and total < PROGRESS_MIN_ROWS:
        yield lambda n: None
        return
    from rich.progress import (  # rich's live display only when a bar is shown
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn(what), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)
