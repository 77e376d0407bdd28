"""``kms replay``: rebuild every pair's book from a recording and report what verified."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from ..core.pairs import VALID_DEPTHS
from .common import err_console, errors_handled, fail, out_console
from .render import format_replay


def replay(
    file: Annotated[Path, typer.Argument(help="Raw Kraken v2 frames, one JSON frame per line.")],
    check: Annotated[
        bool, typer.Option("--check", help="Exit with status 1 if any checksum mismatches.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object keyed by pair.")
    ] = False,
    depth: Annotated[
        int | None,
        typer.Option("--depth", help="Book depth for every pair (default: from the acks, or 10)."),
    ] = None,
) -> None:
    """Replay a recording through the exact books and verify every checksum."""
    from ..core.replay import replay_lines  # the books and the parser only when replaying

    with errors_handled():
        if depth is not None and depth not in VALID_DEPTHS:
            raise fail(f"--depth {depth} is not one of {', '.join(map(str, VALID_DEPTHS))}")
        if not file.exists():
            raise fail(f"no such file: {file}", "give the path of a file written by kms record")
        if file.is_dir():
            raise fail(f"{file} is a folder, not a recording")
        with file.open("rb") as fh:
            result = replay_lines(fh, depth=depth)
        if result.lines == 0:
            raise fail(f"{file} is empty: no frames to replay")
        if not result.pairs:
            reason = result.bad_samples[0][1] if result.bad_samples else "no book frames"
            raise fail(
                f"{file}: no book frames found ({result.bad_frames} bad of "
                f"{result.lines} lines; first: {reason})",
                "the file must hold raw Kraken v2 frames, one per line (kms record writes them)",
            )
        if json_out:
            out = {pair: st.to_dict() for pair, st in sorted(result.pairs.items())}
            typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        else:
            out_console.print(format_replay(file, result))
        if result.bad_frames:
            first = result.bad_samples[0]
            err_console.print(
                f"[yellow]warning:[/] {result.bad_frames} bad frame(s) skipped "
                f"(first at line {first[0]}: {first[1]})"
            )
        if check and result.mismatches:
            raise typer.Exit(1)
