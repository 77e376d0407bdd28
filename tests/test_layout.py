"""Rules the test suite keeps, held by reading it (``ast``), not by convention.

- **Tests mirror modules.** Every source module with logic (a ``def`` of its own) has a test
  module named after its path: ``src/krakenstream/feed/pool.py`` → ``tests/test_feed_pool.py``,
  ``store/archive/files.py`` → ``test_store_archive_files.py``, a package's ``__init__.py``
  → the package's name; the gateway's modules drop ``daemon/`` (``daemon/gateway/hub.py`` →
  ``test_gateway_hub.py``). A module of pure glue is in :data:`GLUE` with its reason; one whose
  tests still live elsewhere is in :data:`NOT_MIRRORED_YET` with where they are, a debt to pay
  and never a place for a new module. Both lists are checked to be current.
- **No test waits by the clock.** A sleep in ``tests/`` either yields to the event loop
  (``sleep(0)``) or is the interval of a polling loop: it sits inside a ``while``/``for`` loop
  of its own function, which re-checks a condition (with a deadline) on every turn. A sleep of
  any other kind is a fixed wait, and a fixed wait before an assertion passes or fails with the
  machine's load. On top of that, no non-zero sleep is ever directly followed by an ``assert``
  in the same block, loop or not. A "sleep" is any call named ``sleep``
  (``time.sleep``, ``asyncio.sleep``, an imported ``sleep``).
- **Rooms of a readable size** (issue 11's done-when). A source module over
  :data:`MODULE_LINES` lines says why at its top (its docstring holds "on purpose"); a function
  over :data:`FUNCTION_LINES` lines is in :data:`LONG_FUNCTIONS` with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src" / "krakenstream"

#: modules with a ``def`` that are glue: no branch or rule of their own to test
GLUE: dict[str, str] = {
    "daemon/gateway/responses.py": "one line, orjson into a Response; every route test reads "
                                   "what it builds",
}

#: modules with logic whose tests are not (yet) in a module of their own: where they are.
#: Paying one off means moving or writing its tests into the mirror and deleting the line.
NOT_MIRRORED_YET: dict[str, str] = {
    "users/sqlite.py": "test_users_store.py, the users' contract suite on SQLite",
    "users/mysql.py": "test_users_store.py, the users' contract suite on MariaDB",
    "users/mysql_schema.py": "test_users_store.py (schema versions, upgrades) on MariaDB",
    "core/session.py": "test_core_checksum.py, test_core_parser.py, test_core_property.py",
}

#: a sleep outside a polling loop that is nevertheless no wait, by (file, function): each
#: with its reason. Empty is the goal; an entry needs a reason a reviewer accepts.
SLEEPS_ALLOWED: dict[tuple[str, str], str] = {
    ("test_sqlite_wal.py", "sleep"): "counts enable_wal's own retry sleeps and sleeps them: "
                                     "the interval of the polling loop under test",
}


def mirror(module: Path) -> str:
    """The test module's name for a source module (see the module docstring)."""
    parts = list(module.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[:2] == ["daemon", "gateway"]:
        parts = parts[1:]
    return "test_" + "_".join(parts) + ".py"


def has_logic(module: Path) -> bool:
    tree = ast.parse(module.read_text(), filename=str(module))
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(tree))


def test_every_module_with_logic_has_its_mirror_test_module() -> None:
    modules = {str(p.relative_to(SRC)): p for p in sorted(SRC.rglob("*.py"))
               if p.name != "__main__.py"}
    missing = [f"{name} -> tests/{mirror(p)}" for name, p in modules.items()
               if has_logic(p) and not (TESTS / mirror(p)).exists()
               and name not in GLUE and name not in NOT_MIRRORED_YET]
    assert not missing, "source modules without their test module (write it, or say in "\
        "GLUE why there is nothing to test):\n" + "\n".join(missing)


def test_the_lists_of_exceptions_are_current() -> None:
    listed = {**GLUE, **NOT_MIRRORED_YET}
    gone = [name for name in listed if not (SRC / name).exists()]
    mirrored = [name for name in listed if (SRC / name).exists()
                and (TESTS / mirror(SRC / name)).exists()]
    assert not gone, f"listed but no longer in src/: {gone}"
    assert not mirrored, f"listed but mirrored now (delete the line): {mirrored}"
    assert not set(GLUE) & set(NOT_MIRRORED_YET)


def _is_sleep(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name == "sleep"


def _yields_only(call: ast.Call) -> bool:
    """``sleep(0)``: a turn of the event loop, no time."""
    return (len(call.args) == 1 and isinstance(call.args[0], ast.Constant)
            and call.args[0].value == 0)


def _sleep_call(stmt: ast.stmt) -> ast.Call | None:
    """The sleep a statement consists of (``sleep(x)``, ``await asyncio.sleep(x)``)."""
    if not isinstance(stmt, ast.Expr):
        return None
    value = stmt.value.value if isinstance(stmt.value, ast.Await) else stmt.value
    return value if isinstance(value, ast.Call) and _is_sleep(value) else None


def fixed_waits(path: Path) -> list[str]:
    """Every sleep in ``path`` that breaks the rule, as ``file:line function: call``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    found: list[str] = []

    def where(node: ast.AST) -> tuple[str, bool]:
        """The enclosing function's name, and whether a loop of it holds ``node``."""
        in_loop = False
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.While | ast.For | ast.AsyncFor):
                in_loop = True
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                return getattr(node, "name", "<lambda>"), in_loop
        return "<module>", in_loop

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_sleep(node) and not _yields_only(node):
            function, in_loop = where(node)
            if not in_loop and (path.name, function) not in SLEEPS_ALLOWED:
                found.append(f"{path.name}:{node.lineno} {function}: {ast.unparse(node)} "
                             "(not in a polling loop)")
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            for stmt, after in zip(block, block[1:], strict=False):
                call = _sleep_call(stmt)
                if call is not None and not _yields_only(call) and isinstance(after, ast.Assert):
                    found.append(f"{path.name}:{stmt.lineno} {where(stmt)[0]}: "
                                 f"{ast.unparse(call)} then an assert")
    return found


def test_no_test_waits_a_fixed_time() -> None:
    found = [line for path in sorted(TESTS.rglob("*.py")) for line in fixed_waits(path)]
    assert not found, ("wait on a condition (poll with a deadline: gateway_support.eventually,"
                       " test_bus_support.wait_until), not a fixed time:\n" + "\n".join(found))


def test_the_rule_catches_what_it_says(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import asyncio, time\n"
        "async def fixed():\n"
        "    await asyncio.sleep(0.5)\n"  # 3: not in a loop
        "    assert True\n"
        "async def polled(ok):\n"
        "    while not ok():\n"
        "        await asyncio.sleep(0.01)\n"  # fine: a polling interval
        "    await asyncio.sleep(0)\n"  # fine: a turn of the loop
        "    assert ok()\n"
        "def counted():\n"
        "    for _ in range(3):\n"
        "        time.sleep(1)\n"  # 12: in a loop, but an assert follows it
        "        assert True\n"
        "def later(stop):\n"
        "    def go():\n"
        "        time.sleep(0.3)\n"  # 16: in a nested function, outside any loop of its own
        "        stop.set()\n"
        "    while True:\n"
        "        go()\n"
    )
    assert sorted({int(line.split(":")[1].split()[0]) for line in fixed_waits(sample)}) == [
        3, 12, 16]


#: issue 11: "no module over ~500 lines without a reason stated at its top"
MODULE_LINES = 500
#: issue 11: "no function over ~80 lines"
FUNCTION_LINES = 80
#: functions allowed past FUNCTION_LINES, with the reason
LONG_FUNCTIONS: dict[str, str] = {
    "daemon/metrics.py:Metrics.__init__": "the metrics declared, one statement each: a list, "
                                          "no branch",
}


def _long_functions() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text())
        for cls in [tree, *[n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]]:
            prefix = "" if cls is tree else f"{cls.name}."  # type: ignore[attr-defined]
            for node in cls.body:  # type: ignore[attr-defined]
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > FUNCTION_LINES:
                        found[f"{rel}:{prefix}{node.name}"] = lines
    return found


def test_a_long_module_says_why_at_its_top() -> None:
    silent = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > MODULE_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "on purpose" not in doc:
                silent.append(f"{path.relative_to(SRC)} ({text.count(chr(10))} lines)")
    assert silent == [], f"modules over {MODULE_LINES} lines that do not say why: {silent}"


def test_no_function_is_long_without_its_reason() -> None:
    found = _long_functions()
    unexplained = {name: n for name, n in found.items() if name not in LONG_FUNCTIONS}
    assert unexplained == {}, f"functions over {FUNCTION_LINES} lines: {unexplained}"
    stale = sorted(set(LONG_FUNCTIONS) - set(found))
    assert stale == [], f"LONG_FUNCTIONS lists functions no longer long: {stale}"
