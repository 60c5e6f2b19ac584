"""Operator logs: one line per event, `key=value` fields (camera, request id, timing)."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)-5s %(name)s %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once, for command-line entry points (never at import)."""
    logging.basicConfig(level=level.upper(), format=_FORMAT, stream=sys.stderr, force=True)


def kv(**fields: object) -> str:
    """Render fields as `k=v` pairs so every log line can be grepped by camera or request id."""
    return " ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()
    )
