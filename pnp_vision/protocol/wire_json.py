"""The one place where bytes from the network become Python objects.

`json.loads` alone lets a peer kill the process: a few thousand nested brackets exhaust the
interpreter's recursion limit, a lone surrogate escape (``"\\ud800"``) makes a string that cannot
be encoded again (a reply naming it fails), and ``NaN``/``1e999`` give numbers that compare
false with everything. `load_json` checks size, UTF-8, nesting depth and string length before and
after parsing, and raises `BadRequest` naming the limit, so every caller answers or drops the
message instead of dying.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from pnp_vision.errors import BadRequest

MAX_DEPTH = 16  # the deepest real message (inspect.questions[i].params) is 4 levels
MAX_STRING_CHARS = 16 * 1024

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nesting_depth(raw: bytes) -> int:
    """Deepest bracket nesting of a JSON text, without recursion (strings skipped)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:24]} is out of range (not a finite double)")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (only finite numbers are allowed)")


def _check_strings(obj: Any, what: str, max_chars: int) -> None:
    """Every string and key is encodable UTF-8 (no lone surrogates) and not too long."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if len(item) > max_chars:
                raise BadRequest(
                    f"{what}: a string of {len(item)} characters; the limit is {max_chars}"
                )
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BadRequest(
                    f"{what}: string holds a lone UTF-16 surrogate escape "
                    f"(\\u{ord(item[exc.start]):04x}); only valid Unicode is allowed"
                ) from None


def load_json(
    raw: bytes | bytearray | memoryview,
    *,
    what: str = "message",
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    max_string_chars: int = MAX_STRING_CHARS,
) -> Any:
    """Parse one JSON text from a peer; BadRequest (naming `what` and the limit) if unsafe."""
    data = bytes(raw)
    if len(data) > max_bytes:
        raise BadRequest(f"{what} is {len(data)} bytes; the limit is {max_bytes}")
    try:
        text = data.decode("utf-8")  # strict: rejects invalid bytes and encoded surrogates
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"{what} is not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 4]!r})"
        ) from None
    depth = nesting_depth(data)
    if depth > max_depth:
        raise BadRequest(f"{what} nests {depth} levels deep; the limit is {max_depth}")
    try:
        obj = json.loads(text, parse_float=_finite, parse_constant=_no_constants)
    except RecursionError:  # unreachable after the depth check; never let it escape
        raise BadRequest(f"{what} nests too deep") from None
    except ValueError as exc:  # JSONDecodeError, huge integers, non-finite numbers
        raise BadRequest(f"{what} is not valid JSON: {_short(exc)}") from None
    _check_strings(obj, what, max_string_chars)
    return obj


def printable(text: str, limit: int = 300) -> str:
    """`text` on one line: control and other unprintable characters escaped, then cut."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]
