"""The multipart framing: what is packed unpacks to the same thing; bad input is named."""

from __future__ import annotations

import numpy as np
import pytest

from pnp_vision.errors import BadRequest
from pnp_vision.protocol.frames import (
    CameraState,
    CameraStatus,
    Encoding,
    FrameHeader,
    pack_frame,
    pack_status,
    unpack,
)


def _header(**kw: object) -> FrameHeader:
    values = dict(camera="top", session="s", seq=3, capture_time=12.5, width=4, height=2)
    values.update(kw)
    return FrameHeader(**values)


def test_frame_round_trip_keeps_header_and_payload() -> None:
    pixels = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    header = _header(source_seq=7, source_time=1.5)
    parts = pack_frame(header, pixels)
    assert parts[0] == b"frame.top"
    got_header, payload = unpack([bytes(p) for p in parts])
    assert got_header == header
    assert bytes(payload) == pixels.tobytes()


def test_status_round_trip() -> None:
    status = CameraStatus(
        camera="top", session="s", state=CameraState.RECONNECTING, time=1.0, last_error="boom"
    )
    parts = pack_status(status)
    assert parts[0] == b"status.top"
    assert unpack(parts) == status


@pytest.mark.parametrize(
    ("parts", "needle"),
    [
        ([b"frame.top", b"{not json", b"x"], "invalid frame header"),
        ([b"frame.top", _header().model_dump_json().encode(), b"short"], "expected 4x2x3 = 24"),
        ([b"frame.other", _header().model_dump_json().encode(), bytes(24)], "does not match"),
        ([b"frame.top", _header().model_dump_json().encode()], "2 parts, expected 3"),
        ([b"video.top", b"{}"], "unknown topic"),
        (
            [b"frame.top", _header(encoding=Encoding.JPEG).model_dump_json().encode(), b""],
            "empty payload",
        ),
    ],
)
def test_bad_messages_are_named(parts: list[bytes], needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        unpack(parts)


def test_newer_protocol_version_is_refused() -> None:
    raw = _header().model_dump_json().replace('"version":1', '"version":2').encode()
    with pytest.raises(BadRequest, match="invalid frame header"):
        unpack([b"frame.top", raw, bytes(24)])
