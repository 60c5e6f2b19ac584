"""Frames and camera status as published by the capture daemon.

Frame message, multipart:  [b"frame.<camera>", FrameHeader JSON, payload bytes]
Status message, multipart: [b"status.<camera>", CameraStatus JSON]

The topic comes first so a SUB socket can filter one camera by prefix. Payloads are raw pixels or
an encoded image, never pickled objects.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from pnp_vision.config import StrictModel

PROTOCOL_VERSION = 1
FRAME_TOPIC = "frame."
STATUS_TOPIC = "status."


class Encoding(StrEnum):
    RAW_BGR8 = "raw-bgr8"
    JPEG = "jpeg"
    PNG = "png"


class CameraState(StrEnum):
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    ENDED = "ended"


class FrameHeader(StrictModel):
    version: int = Field(PROTOCOL_VERSION, description="Protocol version of this header.")
    camera: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    session: str = Field(
        min_length=1, max_length=64, description="Capture session id; changes on daemon restart."
    )
    seq: int = Field(ge=0, description="Per-camera frame number within the session.")
    capture_time: float = Field(description="Unix time (s) the frame was grabbed.")
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    channels: int = Field(3, ge=1, le=4)
    encoding: Encoding = Encoding.RAW_BGR8


class CameraStatus(StrictModel):
    version: int = PROTOCOL_VERSION
    camera: str
    session: str
    state: CameraState
    time: float = Field(description="Unix time (s) this status was made.")
    fps: float = Field(0.0, ge=0, description="Measured frames per second (recent window).")
    frames: int = Field(0, ge=0, description="Frames published this session.")
    drops: int = Field(0, ge=0, description="Frames dropped (not published) this session.")
    reconnects: int = Field(0, ge=0)
    last_error: str | None = None
    last_seq: int | None = None
