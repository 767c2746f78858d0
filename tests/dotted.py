"""Editing a copy of nested test data by a dotted path ("credits.1.priority": list indexes are digits),
for the tests that break one value at a time."""

from __future__ import annotations

import copy
from typing import Any


def with_value(data: Any, path: str, value: Any) -> Any:
    """A deep copy of `data` with `value` at `path`; `...` (Ellipsis) deletes the key instead."""
    out = copy.deepcopy(data)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return out
