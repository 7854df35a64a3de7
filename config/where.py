"""Where a config value was written, and Go's name for its type: the pieces of the reference's
config error messages (`file:line:col: ... interface {} is int64, not string`) that every
config block reports in the same way.

The parser keeps positions on the maps and lists it builds (`positions`: key -> or index ->
(file, line, col)); these helpers read them and never fail when a value has none.
"""

from __future__ import annotations

_GO_TYPES = ((bool, "bool"), (int, "int64"), (float, "float64"), (str, "string"),
             (dict, "map[string]interface {}"), (list, "[]interface {}"))


def _fmt(position) -> str:
    file, line, col = position
    return f"{file}:{line}:{col}: " if file else f"{line}:{col}: "


def pos(m, key) -> str:
    """`file:line:col: ` of `key` in map `m`, or "" when unknown."""
    positions = getattr(m, "positions", None)
    if isinstance(positions, dict) and positions.get(key):
        return _fmt(positions[key])
    return ""


def item_pos(lst, i) -> str:
    """`file:line:col: ` of item `i` of list `lst`, or "" when unknown."""
    positions = getattr(lst, "positions", None)
    if isinstance(positions, list) and i < len(positions) and positions[i]:
        return _fmt(positions[i])
    return ""


def go_type(value) -> str:
    """The Go type the reference's config parser gives `value` (times are time.Time)."""
    return next((name for t, name in _GO_TYPES if isinstance(value, t)), "time.Time")
