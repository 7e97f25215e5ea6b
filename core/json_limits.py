"""JSON with a nesting limit: every JSON the project reads from outside (API bodies, trial
bundles) goes through ``json_loads_limited`` (issue 16 item 12).

Python's decoder answers a body nested ~1,000 deep with a RecursionError (a 500 before
this module), and a body nested a little less deep parses but would make any recursive
walk of it fail later. Nothing the project takes is nested more than a few levels (a
trial bundle: about 6), so 32 refuses no honest document. Pure: no Django import.
"""

import json
from typing import Any

MAX_DEPTH = 32


class JsonTooDeep(ValueError):
    """The document nests arrays/objects deeper than the limit (a ValueError, as a JSON syntax error is)."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(
            f"JSON nested deeper than {max_depth} levels (arrays and objects inside each other) is refused."
        )
        self.max_depth = max_depth


def json_depth_exceeds(value: Any, max_depth: int = MAX_DEPTH) -> bool:
    """True if ``value`` (parsed JSON) nests lists/dicts deeper than ``max_depth``; iterative, no recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_loads_limited(text: str | bytes, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` that raises JsonTooDeep (a ValueError) instead of a RecursionError or
    returning a document nested deeper than ``max_depth``. Syntax errors stay JSONDecodeError."""
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    if json_depth_exceeds(value, max_depth):
        raise JsonTooDeep(max_depth)
    return value
