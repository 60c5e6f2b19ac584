"""The base of every wire and config model: strict about fields and about numbers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown fields are an error, not ignored; NaN and +-Infinity are never a valid number.

    A non-finite number compares false with everything, so one in a frame's ``capture_time``
    or a request's ``deadline_ms`` would silently defeat every age and deadline check.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
