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

# A string, terminated or not: it always matches where a quote opens, so a scan never retries
# from inside a long run of escapes (with `"(?:[^"\\]|\\.)*"`, an unterminated `"\\"\\"...` of
# 64 KiB took 3 s: each later quote started a new attempt to the end).
_STRING_TOKEN = rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)'
_STRING = re.compile(_STRING_TOKEN, re.DOTALL)
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


_SCAN_TOKEN = re.compile(_STRING_TOKEN + rb"|[\[{]++|[\]}]++|\\", re.DOTALL)
_OPEN_OBJECT = re.compile(rb"[ \t\r\n]*\{")
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
# a plain string value: no escapes, no control characters (UTF-8 checked after)
_PLAIN_STRING = re.compile(rb'"([^"\\\x00-\x1f\x7f]*)"')
MAX_SCAN_TOKENS = 4096  # strings and bracket runs looked at, at most (~2 ms)


def top_level_string(
    raw: bytes | bytearray | memoryview, key: str, *, max_chars: int, scan_bytes: int
) -> str | None:
    """The value of `key` in a JSON object that could not be parsed, read without parsing it.

    One pass over at most the first `scan_bytes` bytes and `MAX_SCAN_TOKENS` tokens (whole
    strings and runs of brackets; nothing else is read, nothing recurses): the first `"key"` at
    the top level of the object, followed by `:` and a plain string of valid, printable UTF-8
    (no escapes), 1 to `max_chars` characters. Anything else (not an object, the key only
    nested or escaped, a value of another kind, a backslash outside a string, the budget spent)
    gives None: better no id than a wrong one.
    """
    data = bytes(raw[:scan_bytes])
    start = _OPEN_OBJECT.match(data)
    if start is None:
        return None
    wanted = b'"' + key.encode() + b'"'
    depth = 1
    tokens = _SCAN_TOKEN.finditer(data, start.end())
    for token, _ in zip(tokens, range(MAX_SCAN_TOKENS), strict=False):
        text = token.group()
        if text[0] == 0x5C:  # a backslash outside a string: not JSON
            return None
        if text[0] in b"[{":
            depth += len(text)
        elif text[0] in b"]}":
            depth -= len(text)
            if depth <= 0:
                return None  # the object ended without the key
        elif depth == 1 and text == wanted:
            colon = _COLON.match(data, token.end())
            if colon is None:
                continue  # a value that reads like the key
            value = _PLAIN_STRING.match(data, colon.end())
            if value is None:
                return None
            try:
                found = value.group(1).decode("utf-8")
            except UnicodeDecodeError:
                return None
            return found if 0 < len(found) <= max_chars and found.isprintable() else None
    return None


def printable(text: str, limit: int = 300) -> str:
    """`text` on one line: control and other unprintable characters escaped, then cut."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]
