"""The base of every wire and config model: strict about fields and about numbers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """Unknown fields are an error, not ignored; NaN and +-Infinity are never a valid number.

    A non-finite number compares false with everything, so one in a frame's ``capture_time``
    or a request's ``deadline_ms`` would silently defeat every age and deadline check.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def one_line(exc: ValidationError, limit: int = 3, prefix: str = "") -> str:
    """`key: what is allowed (got value)` for each problem, on one line: for people, no links.

    `prefix` is put before each field name (`PNP_VISION_` turns `queue_size` into the variable).
    """
    parts = []
    for err in exc.errors(include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] != "missing" and not isinstance(err.get("input"), dict | list):
            msg += f" (got {err.get('input')!r:.60})"
        name = f"{prefix}{loc.upper() if prefix else loc}" if loc else ""
        parts.append(f"{name}: {msg}" if name else msg)
    more = exc.error_count() - limit
    text = "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    return " ".join(text.split())  # one line, whatever the messages held
