"""``cli/output.py``: an export's file appears under its name only once complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from krakenstream.cli import output
from krakenstream.errors import InputError


def test_rows_are_counted_by_line_breaks() -> None:
    assert output.count_rows(b"") == 0
    assert output.count_rows(b"ts,mid\n1,2\n3,4\n") == 3
    assert output.count_rows(b"half a ro") == 0  # a line cut across chunks counts once, later


def test_a_folder_is_refused_with_an_example(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder; give a file name") as caught:
        output.file_for(str(tmp_path), "--csv btc.csv")
    assert caught.value.hint == "e.g. --csv btc.csv"
    assert output.file_for("~/x.csv", "-").is_absolute()  # ~ expanded


def test_the_file_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    part = tmp_path / ".btc.csv.part"
    with output.into_file(path) as fh:
        fh.write(b"ts,mid\n")
        assert part.exists() and not path.exists()  # written beside it meanwhile
        fh.write(b"1,2\n")
    assert path.read_bytes() == b"ts,mid\n1,2\n" and not part.exists()

    with pytest.raises(KeyboardInterrupt), output.into_file(path) as fh:
        fh.write(b"something else, half written")
        raise KeyboardInterrupt  # Ctrl-C mid-export
    assert path.read_bytes() == b"ts,mid\n1,2\n"  # the earlier file is left as it was
    assert not part.exists()  # and no half file lies beside it


def test_short_exports_get_no_bar_long_ones_do(capsys: pytest.CaptureFixture[str]) -> None:
    with output.progress(output.PROGRESS_MIN_ROWS - 1) as advance:
        advance(10)
    assert capsys.readouterr().err == ""
    with output.progress(None) as advance:  # size unknown: a bar (and a spinner) anyway
        advance(output.PROGRESS_MIN_ROWS)
    with output.progress(5_000, "exporting BTC/USD") as advance:
        for _ in range(5):
            advance(1_000)
    captured = capsys.readouterr()
    assert captured.out == ""  # never mixed with the data


def test_stdout_gets_the_chunks_as_they_are(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    output.to_stdout([b"ts,mid\n", b"1,2\n", b""])
    assert capfdbinary.readouterr().out == b"ts,mid\n1,2\n"
