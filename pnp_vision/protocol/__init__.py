"""Every wire message of pnp-vision, defined once (pydantic) and used by both sides.

- `frames`: what the capture daemon publishes (`frame.<camera>` and `status.<camera>` topics).
- `requests`: what controllers send to the worker and what it replies.
See docs/protocol.md for the framing with JSON examples.
"""

from pnp_vision.protocol.frames import (
    PROTOCOL_VERSION,
    CameraState,
    CameraStatus,
    Encoding,
    FrameHeader,
)

__all__ = ["PROTOCOL_VERSION", "CameraState", "CameraStatus", "Encoding", "FrameHeader"]
