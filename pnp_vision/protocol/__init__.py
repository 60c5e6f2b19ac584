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
from pnp_vision.protocol.requests import (
    CameraView,
    ErrorInfo,
    FrameChoice,
    FrameUsed,
    InspectRequest,
    InspectResult,
    ModelStatus,
    PingRequest,
    PingResult,
    QuestionResult,
    QuestionSpec,
    QueueStatus,
    Reply,
    Request,
    RequestKind,
    ServiceTimings,
    StatusRequest,
    StatusResult,
    TemplatesRequest,
    TemplatesResult,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
)

__all__ = [
    "PROTOCOL_VERSION",
    "CameraState",
    "CameraStatus",
    "CameraView",
    "Encoding",
    "ErrorInfo",
    "FrameChoice",
    "FrameHeader",
    "FrameUsed",
    "InspectRequest",
    "InspectResult",
    "ModelStatus",
    "PingRequest",
    "PingResult",
    "QuestionResult",
    "QuestionSpec",
    "QueueStatus",
    "Reply",
    "Request",
    "RequestKind",
    "ServiceTimings",
    "StatusRequest",
    "StatusResult",
    "TemplatesRequest",
    "TemplatesResult",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
]
