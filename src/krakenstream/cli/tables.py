"""Tables that fit the terminal without cutting a value.

Rich shortens a cell that does not fit with ``…``: a price of ``94912.1`` shows as ``949…``,
which reads as a number and is wrong. A :class:`FitTable` decides at render time, from the
width it is given, what to show instead, in this order:

1. every column, with its full header;
2. every column, with the short headers (``mism.`` for ``mismatches``);
3. columns dropped by :attr:`Column.priority`, the least needed first, and a caption naming
   them (by default: ``--json`` has everything);
4. when even the columns that cannot go do not fit: one block per row, a ``header value``
   line per column (or the header above its value), every value whole.

Values are never cut: a cell that is not text meant to wrap is never wrapped either, and
any column folds rather than ellipsize should rich still be short of room (a very narrow
terminal), so digits may move to the next line but never disappear.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import (
    Console,
    ConsoleOptions,
    Group,
    JustifyMethod,
    RenderableType,
    RenderResult,
)
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

Cell = str | Text
#: a width no terminal has, to measure what a table needs
UNBOUNDED = 100_000
DROPPED_NOTE = "not shown at this width: {names} (a wider terminal shows them; --json has all)"


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


@dataclass(frozen=True, slots=True)
class Column:
    """One column: how it is headed and aligned, and how much it is needed."""

    header: str
    justify: JustifyMethod = "right"
    style: str = ""
    #: 0: never dropped; higher numbers are dropped first when the width runs short, every
    #: column of one number together (a ladder's two ``cum`` columns go at once)
    priority: int = 0
    #: prose (an error message) that may wrap; numbers and names never wrap
    wraps: bool = False
    #: a shorter header tried before any column is dropped
    short: str | None = None


class FitTable:
    """A table of text cells that fits the width it is rendered at (see the module)."""

    def __init__(self, columns: Sequence[Column], rows: Iterable[Sequence[Cell]], *,
                 title: str | Text | None = None,
                 dropped_note: str | None = DROPPED_NOTE) -> None:
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"a row of {len(row)} cells for {len(self.columns)} columns")
        self.title = title
        #: the caption when columns are left out; ``{names}`` lists them; None: no caption
        self.dropped_note = dropped_note

    # -- the layouts, widest first ------------------------------------------------------------

    def layouts(self) -> Iterable[tuple[list[int], bool]]:
        """(column indexes shown, short headers) from the widest layout to the narrowest."""
        shown = list(range(len(self.columns)))
        yield shown, False
        if any(c.short for c in self.columns):
            yield shown, True
        levels = sorted({c.priority for c in self.columns if c.priority > 0}, reverse=True)
        for level in levels:
            shown = [i for i in shown if self.columns[i].priority != level]
            yield shown, True

    def table(self, shown: list[int], short: bool) -> Table:
        dropped = [self.columns[i].header for i in range(len(self.columns)) if i not in shown]
        caption = (self.dropped_note.format(names=", ".join(dict.fromkeys(dropped)))
                   if dropped and self.dropped_note else None)
        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD,
                      caption=caption, caption_justify="left", caption_style="dim")
        for i in shown:
            col = self.columns[i]
            header = col.short if short and col.short else col.header
            # rich measures a no_wrap cell by its longest word, not its whole length: the
            # width it needs whole is given as the column's minimum
            whole = None if col.wraps else max(
                [cell_len(header), *(cell_len(_plain(row[i])) for row in self.rows)])
            table.add_column(header, justify=col.justify, style=col.style,
                             no_wrap=not col.wraps, overflow="fold", min_width=whole)
        for row in self.rows:
            table.add_row(*(row[i] for i in shown))
        return table

    def vertical(self, width: int = UNBOUNDED) -> Group:
        """One block per row, every column, nothing cut: ``header  value`` lines, or where
        even that is too wide for ``width``, the header on one line and the value below."""
        parts: list[RenderableType] = []
        if self.title is not None:
            parts.append(Text(self.title) if isinstance(self.title, str) else self.title)
        label = max(cell_len(c.header) for c in self.columns)
        longest = max((cell_len(_plain(cell)) for row in self.rows for cell in row), default=0)
        side_by_side = label + 2 + longest <= width
        for row in self.rows:
            grid = Table.grid(padding=(0, 2))
            if side_by_side:
                grid.add_column(style="dim", no_wrap=True, min_width=label)
                grid.add_column(overflow="fold")
                for col, cell in zip(self.columns, row, strict=True):
                    grid.add_row(col.header, _text(cell))
            else:
                grid.add_column(overflow="fold")
                for col, cell in zip(self.columns, row, strict=True):
                    grid.add_row(Text(col.header, style="dim"))
                    grid.add_row(_text(cell))
            parts += [Text(""), grid]
        return Group(*parts)

    def choose(self, console: Console, options: ConsoleOptions) -> RenderableType:
        """The widest layout whose narrowest rendering fits ``options.max_width``."""
        # measured as if unbounded: a measurement is clamped to the width it is given
        unbounded = options.update_width(UNBOUNDED)
        for shown, short in self.layouts():
            table = self.table(shown, short)
            if Measurement.get(console, unbounded, table).minimum <= options.max_width:
                return table
        return self.vertical(options.max_width)

    # -- rich protocol ------------------------------------------------------------------------

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.choose(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        unbounded = options.update_width(UNBOUNDED)
        full = Measurement.get(console, unbounded, self.table(*next(iter(self.layouts()))))
        narrowest = Measurement.get(console, unbounded, self.vertical(0))
        return Measurement(min(narrowest.minimum, full.minimum),
                           full.maximum).clamp(max_width=options.max_width)
