"""Camera capture: sources (OpenCV, recordings), the daemon that publishes them, and receivers.

Names are imported lazily so `pnp-vision --help` does not load OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CameraConfig": "pnp_vision.capture.cameras",
    "load_cameras": "pnp_vision.capture.cameras",
    "CaptureDaemon": "pnp_vision.capture.daemon",
    "Frame": "pnp_vision.capture.subscriber",
    "FrameSubscriber": "pnp_vision.capture.subscriber",
    "RecordingWriter": "pnp_vision.capture.recording",
    "record": "pnp_vision.capture.recording",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pnp_vision.capture' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
