"""Pixels to payload and back, plus the per-camera geometry (rotate, flip, ROI).

The one place that turns OpenCV's encode/decode failures into our errors.
"""

from __future__ import annotations

import cv2
import numpy as np

from pnp_vision.capture.cameras import CameraConfig, Flip
from pnp_vision.errors import ImageError
from pnp_vision.protocol.frames import Buffer, Encoding, FrameHeader

_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
_FLIP = {Flip.HORIZONTAL: 1, Flip.VERTICAL: 0, Flip.BOTH: -1}


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Any 8-bit frame OpenCV hands us (gray, BGRA) as contiguous 3-channel BGR."""
    if image.dtype != np.uint8:
        raise ImageError(f"frame dtype {image.dtype} is not uint8")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"frame shape {image.shape} is not HxW, HxWx3 or HxWx4")
    return np.ascontiguousarray(image)


def shape_frame(image: np.ndarray, cam: CameraConfig) -> np.ndarray:
    """Rotate, flip, then crop to the ROI (clipped to the frame; an empty crop is an error)."""
    if cam.rotate:
        image = cv2.rotate(image, _ROTATE[cam.rotate])
    if cam.flip is not Flip.NONE:
        image = cv2.flip(image, _FLIP[cam.flip])
    if cam.roi is not None:
        x, y, w, h = cam.roi
        crop = image[y : y + h, x : x + w]
        if crop.size == 0:
            raise ImageError(
                f"camera {cam.name!r}: roi {cam.roi} lies outside the "
                f"{image.shape[1]}x{image.shape[0]} frame"
            )
        image = crop
    return np.ascontiguousarray(image)


def encode(image: np.ndarray, encoding: Encoding, *, jpeg_quality: int = 90, png_level: int = 1):
    """The wire payload for a contiguous BGR image (raw: the array itself, zero copy)."""
    if encoding is Encoding.RAW_BGR8:
        return image
    if encoding is Encoding.JPEG:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    else:
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, png_level])
    if not ok:
        raise ImageError(f"cannot encode a {image.shape} frame as {encoding.value}")
    return buf


def encoded_size(payload: Buffer) -> tuple[int, int] | None:
    """Width and height a JPEG/PNG payload's header promises (no pixels decoded), or None."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(bytes(payload))) as opened:
            return opened.size
    except Exception:  # unreadable header, or PIL's own bomb guard: the caller rejects it
        return None


def decode(header: FrameHeader, payload: Buffer, max_pixels: int | None = None) -> np.ndarray:
    """BGR uint8 pixels of a received frame; raw payloads are wrapped, not copied (read-only).

    An encoded payload is checked against the header (and `max_pixels`) from its own header
    first: a small file can promise gigapixels, and decoding it would take the memory first.
    """
    if max_pixels is not None and header.width * header.height > max_pixels:
        raise ImageError(
            f"camera {header.camera!r} seq {header.seq}: {header.width}x{header.height} is more "
            f"than {max_pixels} pixels"
        )
    if header.encoding is not Encoding.RAW_BGR8:
        size = encoded_size(payload)
        if size != (header.width, header.height):
            promised = "an unreadable header" if size is None else f"{size[0]}x{size[1]}"
            raise ImageError(
                f"camera {header.camera!r} seq {header.seq}: {header.encoding.value} payload has "
                f"{promised}, header says {header.width}x{header.height}"
            )
    if header.encoding is Encoding.RAW_BGR8:
        shape = (header.height, header.width, header.channels)
        image = np.frombuffer(payload, dtype=np.uint8).reshape(shape)
    else:
        image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ImageError(
                f"camera {header.camera!r} seq {header.seq}: {header.encoding.value} payload "
                "does not decode"
            )
        image = as_bgr(image)
        if image.shape[:2] != (header.height, header.width):
            raise ImageError(
                f"camera {header.camera!r} seq {header.seq}: decoded {image.shape[1]}x"
                f"{image.shape[0]}, header says {header.width}x{header.height}"
            )
    if image.flags.writeable:
        image.flags.writeable = False
    return image
