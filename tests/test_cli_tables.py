"""FitTable: the widest layout that shows every value whole, never a cut number."""

from __future__ import annotations

import pytest
from rich.columns import Columns
from rich.console import Console, RenderableType
from rich.text import Text

from krakenstream.cli.tables import Column, FitTable

COLUMNS = (
    Column("name", justify="left"),
    Column("a very long header", short="long", priority=1),
    Column("first to go", priority=2),
    Column("second to go", priority=2),
    Column("note", justify="left", wraps=True),
)
ROWS = [["alpha", "12345678", "1", "2", "some words that may wrap"],
        ["beta", "87654321", "3", "4", ""]]


def text_of(renderable: RenderableType, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_layouts_go_from_widest_to_narrowest() -> None:
    table = FitTable(COLUMNS, ROWS)
    assert list(table.layouts()) == [
        ([0, 1, 2, 3, 4], False),
        ([0, 1, 2, 3, 4], True),
        ([0, 1, 4], True),  # one priority at a time, every column of it together
        ([0, 4], True),
    ]


@pytest.mark.parametrize("width", range(12, 90, 3))
def test_no_value_is_ever_cut(width: int) -> None:
    text = text_of(FitTable(COLUMNS, ROWS, title="things"), width)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    for value in ("alpha", "beta", "12345678", "87654321"):
        assert value in text or "a very long header" in " ".join(text.split()), value
    assert "some words that may wrap" in " ".join(text.split())


def test_each_step_in_turn() -> None:
    table = FitTable(COLUMNS, ROWS)
    wide = text_of(table, 100)
    assert "a very long header" in wide and "not shown" not in wide
    shorter = text_of(table, 66)
    assert "long" in shorter and "a very long header" not in shorter
    assert "not shown" not in shorter
    dropped = text_of(table, 50)
    assert "12345678" in dropped and "first to go" not in dropped.split("not shown")[0]
    assert "not shown at this width: first to go, second to go" in " ".join(dropped.split())
    vertical = text_of(table, 14)
    assert [line.split() for line in vertical.splitlines() if "12345678" in line]


def test_a_caption_can_be_left_out_or_worded() -> None:
    assert "not shown" not in text_of(FitTable(COLUMNS, ROWS, dropped_note=None), 50)
    worded = text_of(FitTable(COLUMNS, ROWS, dropped_note="{names}: hidden"), 50)
    assert "first to go, second to go: hidden" in " ".join(worded.split())


def test_cells_are_text_not_markup() -> None:
    rows = [[Text("[bold]x[/]"), "1", "2", "3", Text("[red]")]]
    text = text_of(FitTable(COLUMNS, rows), 100)
    assert "[bold]x[/]" in text and "[red]" in text


def test_a_row_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="a row of 2 cells for 5 columns"):
        FitTable(COLUMNS, [["a", "b"]])


def test_side_by_side_only_when_both_fit_whole() -> None:
    pair = Columns([FitTable(COLUMNS, ROWS), FitTable(COLUMNS, ROWS)], equal=True)
    side_by_side = text_of(pair, 200)
    assert max(line.count("alpha") for line in side_by_side.splitlines()) == 2
    stacked = text_of(pair, 80)
    assert max(line.count("alpha") for line in stacked.splitlines()) == 1
    assert "…" not in stacked
