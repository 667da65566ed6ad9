"""Function names as the oracles spell them, made comparable: gdb and eu-stack spell some
aliases differently (``clone3``/``__clone3``), and gdb adds C++ parameter lists."""

from __future__ import annotations

import re


def normalize(name: str | None) -> str | None:
    """The name without leading underscores, parameter list, return type or Rust hash."""
    if name is None or name == "??":
        return None
    if name.startswith("<signal"):
        return "<signal handler called>"
    depth, cut = 0, len(name)
    for i, ch in enumerate(name):  # drop the parameter list
        if ch in "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0 and i > 0:
            cut = i
            break
    name = name[:cut]
    depth, start = 0, 0
    for i, ch in enumerate(name):  # drop a template function's return type
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == " " and depth == 0:
            start = i + 1
    return re.sub(r"::h[0-9a-f]{16}$", "", name[start:]).lstrip("_")


def up_to_main(names: list[str | None]) -> list[str | None]:
    """The frames gdb shows: it stops at ``main`` (``backtrace past-main`` is off)."""
    return names[:names.index("main") + 1] if "main" in names else names
