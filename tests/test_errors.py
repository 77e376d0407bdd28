"""``errors.py``: one root, the tree its docstring draws, and hints that default per class."""

from __future__ import annotations

import inspect
import re

import pytest

from krakenstream import errors
from krakenstream.errors import (
    AuthError,
    ConfigError,
    Forbidden,
    InputError,
    KmsError,
    Overloaded,
    Throttled,
)


def drawn_tree() -> dict[str, str]:
    """Each class in the docstring's tree, with its parent (by indentation)."""
    doc = errors.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(\s*(?:[│ ]\s*)*)(?:├── |└── )?([A-Z][A-Za-z]+)(\s|$)", line)
        if not m or not m.group(2).endswith(("Error", "Found", "Conflict", "Throttled",
                                             "Forbidden", "Unavailable", "Overloaded",
                                             "Pair")):
            continue
        depth = len(m.group(1)) + (4 if ("├" in line or "└" in line) else 0)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[m.group(2)] = stack[-1][1]
        stack.append((depth, m.group(2)))
    return parents


def test_the_docstrings_tree_is_the_class_tree() -> None:
    classes = {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
               if issubclass(cls, KmsError)}
    drawn = drawn_tree()
    assert set(drawn) | {"KmsError"} == set(classes)  # every error drawn, none extra
    for name, parent in drawn.items():
        assert classes[name].__bases__ == (classes[parent],), name


def test_a_message_and_a_hint_default_per_class() -> None:
    e = InputError("bad range", hint="since before until")
    assert (str(e), e.message, e.hint) == ("bad range", "bad range", "since before until")
    assert InputError("bad").hint is None
    assert ConfigError("x").hint == "see config.example.toml for every key and its type"
    assert AuthError("expired").hint == "kms login"
    assert Forbidden("admins only").hint.startswith("ask an admin")  # type: ignore[union-attr]
    assert ConfigError("x", hint="mine").hint == "mine"
    assert ConfigError.hint == "see config.example.toml for every key and its type"


@pytest.mark.parametrize("cls", [Throttled, Overloaded])
def test_a_refusal_to_retry_later_says_when(cls: type[Throttled] | type[Overloaded]) -> None:
    e = cls("busy", retry_after=7)
    assert e.retry_after == 7 and e.hint == "wait 7 s, then try again"
    assert isinstance(e, KmsError)
