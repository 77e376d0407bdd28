"""The layering, held by reading the source (``ast``), not by convention.

- Only the edges read the settings: the daemon (``daemon/``: its wiring builds every backend)
  and the CLI (``cli/``). The bus, the stores, the users'
  store, the feed, the simulator and the client take plain values.
- ``core/`` is pure: it imports nothing with I/O (no asyncio, sockets, files, clocks or
  processes, no other krakenstream package but ``errors``) and reads no clock.
- Both ends of the wire share :mod:`krakenstream.wire`, which needs no web framework; the
  client needs nothing of the feed or the daemon.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "krakenstream"

#: who may import krakenstream.config (a module name, or a package ending in ".")
READS_SETTINGS = ("krakenstream.config", "krakenstream.daemon.", "krakenstream.cli")
#: everything core/ may import (a module and its submodules)
CORE_MAY_IMPORT = {
    "__future__", "bisect", "collections", "dataclasses", "datetime", "decimal", "enum",
    "functools", "itertools", "json", "math", "random", "re", "typing", "zlib",
    "orjson", "msgspec", "krakenstream.core", "krakenstream.errors",
}
#: calls that read a clock
CLOCKS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "monotonic_ns",
          "perf_counter", "perf_counter_ns"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (functions included), as absolute names;
    ``from a import b`` counts as both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}
    assert len(found) > 50
    return found


def test_only_the_daemon_and_the_cli_read_the_settings() -> None:
    readers = {name for name, path in modules().items()
               if any(under(i, "krakenstream.config") for i in imports(path))}
    assert "krakenstream.daemon.wiring" in readers  # the test sees what it should
    wrong = {name for name in readers
             if not any(name.startswith(a) if a.endswith(".") else under(name, a)
                        for a in READS_SETTINGS)}
    assert not wrong, f"these read the settings, but only the daemon and the CLI may: {wrong}"


@pytest.mark.parametrize("name", sorted(n for n in modules() if under(n, "krakenstream.core")))
def test_core_imports_nothing_with_io_and_reads_no_clock(name: str) -> None:
    path = modules()[name]
    for imported in imports(path):
        if imported.startswith("krakenstream.") and not any(
                under(imported, a) for a in CORE_MAY_IMPORT if a.startswith("krakenstream")):
            pytest.fail(f"{name} imports {imported}")
        top = imported.split(".")[0]
        if top != "krakenstream":
            assert top in CORE_MAY_IMPORT, f"{name} imports {imported}"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in CLOCKS, f"{name} reads a clock (line {node.lineno})"


def test_the_client_needs_nothing_of_the_feed_or_the_daemon() -> None:
    used = imports(modules()["krakenstream.client"])
    assert "krakenstream.wire" in used
    for inner in ("krakenstream.feed", "krakenstream.daemon", "krakenstream.sim",
                  "krakenstream.config"):
        assert not any(under(i, inner) for i in used), inner


def test_the_wire_needs_no_web_framework() -> None:
    used = imports(modules()["krakenstream.wire"])
    assert {i.split(".")[0] for i in used} <= {"__future__", "krakenstream"}
    assert not any(under(i, "krakenstream") and not under(i, "krakenstream.errors")
                   for i in used if i != "krakenstream")
