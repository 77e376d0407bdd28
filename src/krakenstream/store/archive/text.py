"""Wide tables (:mod:`.columns`) as wide CSV text, a whole column at a time.

The same text as :func:`krakenstream.core.wide.wide_row` gives for each snapshot, built with
Arrow's compute kernels instead of Python per value: a day of one pair (86,400 rows, 47
columns) in about a second instead of six (``bench/archive.py``). Arrow's own decimal-to-text
cast writes small values in exponent form (``5E-8``), so decimals are written here from their
unscaled integers: sign, integer part, ``.``, the fraction left-padded with zeros to the
scale, exactly as :func:`~krakenstream.core.numbers.format_scaled` does.

A table that cannot be written this way (a field holding a comma, a quote or a line break:
only Kraken's ``exchange_ts`` text could) is written by the csv module instead, so the output
is always valid CSV.
"""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ...core.numbers import EXACT, format_scaled
from ...core.snapshot import METRIC_COLUMNS
from ...core.wide import level_columns, wide_columns


def header(depth: int) -> bytes:
    return (",".join(wide_columns(depth)) + "\n").encode()


def decimal_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A decimal column as fixed-point text at its scale (null stays null)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    t = arr.type
    scale = t.scale
    if pa.types.is_decimal128(t) and t.precision <= 18:
        arr = arr.cast(pa.decimal64(t.precision, scale))
    if not pa.types.is_decimal64(arr.type):  # more than 18 digits: rare, done in Python
        values = [None if v is None else format_scaled(int(v.scaleb(scale, EXACT)), scale)
                  for v in arr.to_pylist()]
        return pa.array(values, pa.string())
    ints = arr.view(pa.int64())
    if scale == 0:
        return ints.cast(pa.string())
    low = pc.min(ints).as_py()
    negative = low is not None and low < 0
    digits = (pc.abs(ints) if negative else ints).cast(pa.string())
    # 5 at scale 4: "00005" -> "0.0005"; nulls stay null through every step
    padded = pc.utf8_lpad(digits, width=scale + 1, padding="0")
    text = pc.binary_replace_slice(padded, start=-scale, stop=-scale, replacement=".")
    if negative:
        text = pc.binary_join_element_wise(pc.if_else(pc.less(ints, 0), "-", ""), text, "")
    return text


def time_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """timestamp[ms] as ISO 8601 UTC with milliseconds and ``Z`` (``core.times.iso_ms``)."""
    text = pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")  # %S is SS.mmm at ms
    return pc.binary_join_element_wise(text, "Z", "")


def _text_columns(table: pa.Table, depth: int) -> list[pa.Array]:
    n = table.num_rows
    gap = table.column("gap_before")
    out: list[pa.Array] = [
        time_text(table.column("time")),
        table.column("pair"),
        table.column("seq").cast(pa.string()),
        pc.if_else(pc.fill_null(gap, False), "1", "0"),
        table.column("checksum").cast(pa.string()),
        table.column("exchange_ts"),
    ]
    out += [decimal_text(table.column(name)) for name in METRIC_COLUMNS]
    names = set(table.column_names)
    empty = pa.nulls(n, pa.string())
    out += [decimal_text(table.column(name)) if name in names else empty
            for name in level_columns(depth)]
    return out


def wide_csv(table: pa.Table, depth: int) -> bytes:
    """The rows of a wide table with a ``pair`` column, ``gap_before`` as it is to be shown,
    as wide CSV lines with ``depth`` levels a side (deeper levels are cut), no header."""
    if table.num_rows == 0:
        return b""
    columns = _text_columns(table, depth)
    names = wide_columns(depth)
    text = pa.Table.from_arrays(columns, names=names)
    out = io.BytesIO()
    try:
        pacsv.write_csv(text, out, pacsv.WriteOptions(include_header=False,
                                                        quoting_style="none"))
    except pa.ArrowInvalid:  # a field needs quoting
        return _quoted(text)
    return out.getvalue()


def _quoted(text: pa.Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in zip(*(c.to_pylist() for c in text.columns), strict=True):
        writer.writerow("" if v is None else v for v in row)
    return out.getvalue().encode()

