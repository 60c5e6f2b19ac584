"""Frames and camera status as published by the capture daemon, and their multipart framing.

Frame message, multipart:  [b"frame.<camera>", FrameHeader JSON, payload bytes]
Status message, multipart: [b"status.<camera>", CameraStatus JSON]

The topic comes first so a SUB socket can filter one camera by prefix (subscribe to
``b"frame.cam1"`` and ``b"status.cam1"``; note a prefix also matches ``cam10``, so receivers check
the camera in the header). Payloads are raw pixels (``raw-bgr8``: height x width x channels bytes,
row-major, no padding) or an encoded image (``jpeg``, ``png``), never pickled objects.

Everything here is bytes in, bytes out: pixel decoding lives with the capture code, so this module
stays importable without OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from pydantic import Field, ValidationError

from pnp_vision.errors import BadRequest
from pnp_vision.protocol.base import StrictModel
from pnp_vision.protocol.wire_json import load_json

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 16 * 1024
MAX_SEQ = (
    2**63 - 1
)  # fits a signed 64-bit integer in every language  # a frame header or camera status JSON frame
FRAME_TOPIC = "frame."
STATUS_TOPIC = "status."
CAMERA_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"

Buffer = bytes | bytearray | memoryview


class Encoding(StrEnum):
    RAW_BGR8 = "raw-bgr8"
    JPEG = "jpeg"
    PNG = "png"


class CameraState(StrEnum):
    STARTING = "starting"  # opening for the first time, no frame yet
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"  # lost (error or stall) and being reopened with backoff
    FAILED = "failed"  # given up: unusable definition, missing file, or retries exhausted
    ENDED = "ended"  # a file or recording played to its end (no loop)
    STOPPED = "stopped"  # the daemon is shutting down; last status of the session


class FrameHeader(StrictModel):
    version: Literal[1] = Field(PROTOCOL_VERSION, description="Protocol version of this header.")
    camera: str = Field(min_length=1, max_length=64, pattern=CAMERA_NAME_PATTERN)
    session: str = Field(
        min_length=1, max_length=64, description="Capture session id; changes on daemon restart."
    )
    seq: int = Field(ge=0, le=MAX_SEQ, description="Per-camera frame number within the session.")
    capture_time: float = Field(description="Unix time (s) the frame was grabbed.")
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    channels: int = Field(3, ge=1, le=4)
    encoding: Encoding = Encoding.RAW_BGR8
    source_seq: int | None = Field(
        None, ge=0, le=MAX_SEQ, description="Replay only: the frame's seq in the recording."
    )
    source_time: float | None = Field(
        None, description="Replay only: the frame's capture time in the recording."
    )

    @property
    def raw_size(self) -> int:
        """Bytes of the decoded pixels (the payload size for ``raw-bgr8``)."""
        return self.width * self.height * self.channels


class CameraStatus(StrictModel):
    version: Literal[1] = PROTOCOL_VERSION
    camera: str = Field(min_length=1, max_length=64, pattern=CAMERA_NAME_PATTERN)
    session: str = Field(min_length=1, max_length=64)
    state: CameraState
    time: float = Field(description="Unix time (s) this status was made.")
    state_since: float | None = Field(None, description="Unix time (s) the state was entered.")
    fps: float = Field(0.0, ge=0, description="Measured frames per second (recent window).")
    frames: int = Field(0, ge=0, description="Frames published this session.")
    drops: int = Field(0, ge=0, description="Frames dropped (not published) this session.")
    reconnects: int = Field(0, ge=0, description="Times the source was reopened.")
    last_error: str | None = None
    last_seq: int | None = None
    last_capture_time: float | None = Field(
        None, description="Capture time of the newest published frame (shows a stalled camera)."
    )
    source: str | None = Field(None, description="What is being captured (device, URL, path).")


def frame_topic(camera: str) -> bytes:
    return (FRAME_TOPIC + camera).encode()


def status_topic(camera: str) -> bytes:
    return (STATUS_TOPIC + camera).encode()


def pack_frame(header: FrameHeader, payload: Buffer) -> list[Buffer]:
    """The three parts of a frame message; send the payload with ``copy=False``."""
    return [frame_topic(header.camera), header.model_dump_json(exclude_none=True).encode(), payload]


def pack_status(status: CameraStatus) -> list[bytes]:
    """Every field is sent, null when unknown (`last_error` included), as docs/protocol.md says."""
    return [status_topic(status.camera), status.model_dump_json().encode()]


def _parse(model: type[StrictModel], raw: Buffer, what: str) -> StrictModel:
    try:
        load_json(raw, what="JSON", max_bytes=MAX_HEADER_BYTES)  # depth, UTF-8, finite numbers
    except BadRequest as exc:
        raise BadRequest(f"invalid {what}: {exc}") from None
    try:
        return model.model_validate_json(bytes(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "message"
        raise BadRequest(f"invalid {what}: {where}: {err['msg']} ({bytes(raw)[:200]!r})") from exc


def unpack_frame(parts: Sequence[Buffer]) -> tuple[FrameHeader, Buffer]:
    """Check a frame message's framing and header; returns the header and the payload as is."""
    if len(parts) != 3:
        raise BadRequest(f"frame message has {len(parts)} parts, expected 3")
    topic = bytes(parts[0]).decode(errors="replace")
    header = _parse(FrameHeader, parts[1], "frame header")
    assert isinstance(header, FrameHeader)
    if topic != FRAME_TOPIC + header.camera:
        raise BadRequest(f"frame topic {topic!r} does not match camera {header.camera!r}")
    payload = parts[2]
    size = len(payload) if not isinstance(payload, memoryview) else payload.nbytes
    if header.encoding is Encoding.RAW_BGR8 and size != header.raw_size:
        raise BadRequest(
            f"raw-bgr8 payload of camera {header.camera!r} seq {header.seq} has {size} bytes, "
            f"expected {header.width}x{header.height}x{header.channels} = {header.raw_size}"
        )
    if size == 0:
        raise BadRequest(f"empty payload from camera {header.camera!r} seq {header.seq}")
    return header, payload


def unpack_status(parts: Sequence[Buffer]) -> CameraStatus:
    if len(parts) != 2:
        raise BadRequest(f"status message has {len(parts)} parts, expected 2")
    status = _parse(CameraStatus, parts[1], "camera status")
    assert isinstance(status, CameraStatus)
    topic = bytes(parts[0]).decode(errors="replace")
    if topic != STATUS_TOPIC + status.camera:
        raise BadRequest(f"status topic {topic!r} does not match camera {status.camera!r}")
    return status


def unpack(parts: Sequence[Buffer]) -> tuple[FrameHeader, Buffer] | CameraStatus:
    """Dispatch on the topic: ``(header, payload)`` for a frame, a ``CameraStatus`` for status."""
    if not parts:
        raise BadRequest("empty message")
    topic = bytes(parts[0])
    if topic.startswith(FRAME_TOPIC.encode()):
        return unpack_frame(parts)
    if topic.startswith(STATUS_TOPIC.encode()):
        return unpack_status(parts)
    raise BadRequest(f"unknown topic {topic[:64]!r}")
