"""JSON from outside: read with a bound on its nesting, refused with the reason.

Python's parser recurses once per level, so a body of a few thousand `[` ends in a
RecursionError, and anything that walks a deep value later (validation, logging, a
copy) may do the same. Bodies that strangers send are read here: malformed JSON, text
that is not UTF-8, NaN or Infinity (not JSON), or nesting deeper than any real payload
is a `BadJson` whose message says which.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

# Real payloads nest a dozen levels at most (Slack's views, Meta's changes).
MAX_DEPTH = 64


class BadJson(ValueError):
    """The body is not JSON that we read; the message says why."""


def loads(body: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a body as JSON nested at most `max_depth` levels, or raise BadJson."""
    try:
        # UTF-8 only (RFC 8259), where `json` would also guess UTF-16 and UTF-32.
        text = body.decode("utf-8-sig") if isinstance(body, bytes) else body
        data = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise BadJson(f"malformed JSON: nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as error:
        raise BadJson(f"malformed JSON: not UTF-8 text ({error.reason} at byte "
                      f"{error.start})") from None
    except ValueError as error:  # JSONDecodeError, and numbers of over 4,300 digits
        raise BadJson(f"malformed JSON: {error}") from None
    if deeper_than(data, max_depth):
        raise BadJson(f"malformed JSON: nested deeper than {max_depth} levels")
    return data


def deeper_than(data: Any, max_depth: int) -> bool:
    """Tell whether lists and objects in `data` nest deeper than `max_depth` levels."""
    stack = [(data, 1)] if isinstance(data, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack += [(child, depth + 1) for child in children if isinstance(child, dict | list)]
    return False


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not a JSON value")
