"""``kms export``: several pairs' history into one file, Parquet or CSV, oldest first.

Through the daemon's HTTP gateway like every other command (so against a remote daemon too):
each pair's window is asked for as the history endpoint's ``format=parquet`` or wide
``format=csv``, from the window store and the Parquet archive alike. The pairs' answers go
into one file: CSV with one header (every pair at the same ``--depth``), Parquet with a
``pair`` column, each pair's answer downloaded beside the destination first and then copied
in, a row group at a time (:class:`~krakenstream.store.archive.export.ParquetSink` widens a
column whose pairs differ in decimals, so every value stays exact). The file appears under
its name only once complete (:mod:`.output`).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from ..core.pairs import normalize_pair
from ..errors import InputError, KmsError
from .common import err_console, errors_handled
from .history import pair_hints
from .options import DepthOption, SinceOption, UntilOption, parse_window
from .output import count_rows, file_for, into_file, progress
from .server import ServerOption, open_client

if TYPE_CHECKING:
    from ..client import KmsClient

PairsArg = Annotated[list[str], typer.Argument(metavar="PAIR...", help="One or more pairs, "
                                               "e.g. ETH/USD BTC-USD.")]


def export(
    pairs: PairsArg,
    since: SinceOption = None,
    until: UntilOption = None,
    parquet: Annotated[
        str | None, typer.Option("--parquet", metavar="FILE", help="Write one Parquet file.")
    ] = None,
    csv: Annotated[
        str | None, typer.Option("--csv", metavar="FILE", help="Write one wide CSV file.")
    ] = None,
    depth: DepthOption = None,
    server: ServerOption = None,
) -> None:
    """Export PAIRs' snapshots, oldest first, to one Parquet or CSV file (a pair column
    tells them apart); with --since, from the archive too, as far back as it goes."""
    with errors_handled():
        if (parquet is None) == (csv is None):
            raise InputError("choose one of --parquet FILE and --csv FILE",
                             hint="e.g. kms export ETH/USD --since 1d --parquet eth.parquet")
        names = list(dict.fromkeys(normalize_pair(p) for p in pairs))
        since_ms, until_ms = parse_window(since, until, now_ms=int(time.time() * 1000))
        query: dict[str, Any] = {"since": since_ms, "until": until_ms, "order": "asc",
                                 "depth": depth}
        path = file_for(parquet or csv or "", "--parquet eth.parquet")
        with open_client(server) as client, pair_hints():
            if parquet is not None:
                rows = _parquet(client, names, path, query)
            else:
                rows = _csv(client, names, path, query)
        err_console.print(f"wrote {rows} snapshot{'s' if rows != 1 else ''} of "
                          f"{len(names)} pair{'s' if len(names) != 1 else ''} to {path}",
                          markup=False)


def _csv(client: KmsClient, pairs: list[str], path: Path, query: dict[str, Any]) -> int:
    rows = 0
    header: bytes | None = None
    with into_file(path) as fh, progress(None, "exporting") as advance:
        for pair in pairs:
            head: bytes | None = None
            pending = b""
            for chunk in client.history_raw(pair, format="csv", **query):
                if head is None:  # the answer's header: written once, the same for each pair
                    pending += chunk
                    if b"\n" not in pending:
                        continue
                    head, _, chunk = pending.partition(b"\n")
                    if header is None:
                        header = head
                        fh.write(head + b"\n")
                    elif head != header:
                        raise KmsError(f"the daemon answered {pair} with other columns than "
                                       f"{pairs[0]}", hint="give --depth N")
                fh.write(chunk)
                n = count_rows(chunk)
                rows += n
                advance(n)
    return rows


def _parquet(client: KmsClient, pairs: list[str], path: Path, query: dict[str, Any]) -> int:
    import pyarrow.parquet as pq  # pyarrow only when asked for: it costs ~0.3 s to import

    from ..store.archive.export import ParquetSink

    with into_file(path) as fh, progress(None, "exporting") as advance:
        sink = ParquetSink(fh, tmp_dir=path.parent)
        for pair in pairs:
            answer_body = client.history_raw(pair, format="parquet", **query)
            with _download(answer_body, path.parent) as answer:
                parquet = pq.ParquetFile(answer)
                for i in range(parquet.num_row_groups):
                    table = parquet.read_row_group(i)
                    sink.write(table)
                    advance(table.num_rows)
        sink.close(depth=query["depth"] or 10)
        return sink.rows


@contextlib.contextmanager
def _download(chunks: Iterator[bytes], folder: Path) -> Iterator[IO[bytes]]:
    """An answer's body in a temporary file beside the destination (removed at the end)."""
    with tempfile.TemporaryFile(dir=folder) as fh:
        for chunk in chunks:
            fh.write(chunk)
        fh.seek(0)
        yield fh
