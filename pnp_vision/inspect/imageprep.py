"""Image prep: any accepted input to an RGB PIL image, cropped and resized to a pixel budget.

Inputs are OpenCV-style BGR uint8 arrays (H x W x 3, or gray H x W), PIL images, or encoded
PNG/JPEG bytes. Every rejection is an `ImageError` that says what was wrong with the input.
Fewer pixels means fewer image tokens, the biggest lever on latency.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from pnp_vision.errors import ImageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

PixelRoi = tuple[int, int, int, int]  # x, y, width, height in pixels
FractionRoi = tuple[float, float, float, float]  # x, y, width, height as fractions

MAX_INPUT_PIXELS = 64 * 1024 * 1024  # decompression-bomb guard for encoded inputs


def to_pil(image: np.ndarray | Image.Image | bytes | bytearray | memoryview) -> Image.Image:
    """Decode any accepted image input to an RGB PIL image."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise ImageError(f"empty image: PIL image of size {image.size}")
        return image.convert("RGB") if image.mode != "RGB" else image
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        if not data:
            raise ImageError("empty image: 0 bytes")
        try:
            with Image.open(io.BytesIO(data)) as opened:
                if opened.width * opened.height > MAX_INPUT_PIXELS:
                    raise ImageError(
                        f"image too large: {opened.width}x{opened.height} pixels"
                        f" (max {MAX_INPUT_PIXELS})"
                    )
                opened.load()
                return opened.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageError(
                f"cannot decode image bytes ({len(data)} bytes, starting {data[:8]!r}): {exc}"
            ) from exc
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageError(f"image array must be uint8 (BGR), got dtype {image.dtype}")
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ImageError(f"image array must be HxWx3 BGR (or HxW gray), got {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ImageError(f"empty image: array of shape {image.shape}")
        rgb = np.ascontiguousarray(image[:, :, 2::-1])  # BGR(A) -> RGB
        return Image.fromarray(rgb, mode="RGB")
    raise ImageError(
        f"unsupported image type {type(image).__name__}; expected BGR numpy array, PIL image"
        " or PNG/JPEG bytes"
    )


def crop_pixels(image: Image.Image, roi: PixelRoi) -> Image.Image:
    """Crop (x, y, w, h) in pixels; the ROI must lie inside the image."""
    try:
        x, y, w, h = (int(v) for v in roi)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"roi {roi!r} must be four integers (x, y, width, height)") from exc
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > image.width or y + h > image.height:
        raise ImageError(
            f"roi {roi!r} (x, y, width, height) is empty or outside the"
            f" {image.width}x{image.height} image"
        )
    return image.crop((x, y, x + w, y + h))


def crop_fraction(image: Image.Image, roi: FractionRoi) -> Image.Image:
    """Crop a template's fractional ROI; at least one pixel each way survives."""
    x, y, w, h = roi
    left, top = math.floor(x * image.width), math.floor(y * image.height)
    right = max(left + 1, min(image.width, math.ceil((x + w) * image.width)))
    bottom = max(top + 1, min(image.height, math.ceil((y + h) * image.height)))
    return image.crop((left, top, right, bottom))


def fit_pixels(image: Image.Image, max_pixels: int | None) -> Image.Image:
    """Downscale (keeping the aspect ratio) so width * height <= max_pixels."""
    from PIL import Image

    if max_pixels is None or image.width * image.height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (image.width * image.height))
    size = (max(1, math.floor(image.width * scale)), max(1, math.floor(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def prepare(
    image: np.ndarray | Image.Image | bytes,
    *,
    roi: PixelRoi | None = None,
    template_roi: FractionRoi | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Decode, crop (call ROI in pixels, then the template's fractional ROI), fit the budget."""
    pil = to_pil(image)
    if roi is not None:
        pil = crop_pixels(pil, roi)
    if template_roi is not None:
        pil = crop_fraction(pil, template_roi)
    return fit_pixels(pil, max_pixels)
