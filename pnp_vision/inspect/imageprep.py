"""Image prep: any accepted input to an RGB PIL image, cropped and resized to a pixel budget.

Inputs are OpenCV-style BGR uint8 arrays (H x W x 3, or gray H x W), PIL images, or encoded
PNG/JPEG bytes. Every rejection is an `ImageError` that says what was wrong with the input.
Fewer pixels means fewer image tokens, the biggest lever on latency.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pnp_vision.errors import ImageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

PixelRoi = tuple[int, int, int, int]  # x, y, width, height in pixels
FractionRoi = tuple[float, float, float, float]  # x, y, width, height as fractions

MAX_INPUT_PIXELS = 64 * 1024 * 1024  # decompression-bomb guard for encoded inputs


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Check an OpenCV-style array and give it as H x W x 3 BGR uint8 (a view where it is one)."""
    import numpy as np

    if image.dtype != np.uint8:
        raise ImageError(f"image array must be uint8 (BGR), got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"image array must be HxWx3 BGR (or HxW gray), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"empty image: array of shape {image.shape}")
    return image[:, :, :3]


def decode(image: np.ndarray | Image.Image | bytes) -> np.ndarray | Image.Image:
    """Check any accepted input once: a BGR array stays an array (view), the rest an RGB PIL
    image; `prepare` takes either."""
    import numpy as np

    return to_bgr(image) if isinstance(image, np.ndarray) else to_pil(image)


def check_encoded_size(data: bytes, max_pixels: int = MAX_INPUT_PIXELS) -> tuple[int, int]:
    """Width and height from a PNG/JPEG header, without decoding the pixels; ImageError if the
    header is unreadable or promises more than `max_pixels` (a small file can decode to a
    decompression bomb, so this runs before a request is admitted)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError("empty image: 0 bytes")
    try:
        with Image.open(io.BytesIO(data)) as opened:  # reads the header only
            width, height = opened.size
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image too large: {exc} (max {max_pixels} pixels)") from None
    except UnidentifiedImageError:  # its message names an io.BytesIO object, not the input
        raise ImageError(_not_an_image(data)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot decode image bytes ({_described(data)}): {exc}") from None
    if width * height > max_pixels:
        raise ImageError(f"image too large: {width}x{height} pixels (max {max_pixels})")
    if width == 0 or height == 0:
        raise ImageError(f"empty image: {width}x{height} pixels")
    return width, height


def _described(data: bytes) -> str:
    return f"{len(data)} bytes, starting {data[:8]!r}"


def _not_an_image(data: bytes) -> str:
    return f"cannot decode image bytes ({_described(data)}): not a PNG or JPEG image"


def read_image_file(path: Path) -> bytes:
    """A file's bytes, checked as the worker checks an image (its header, not its pixels): a
    missing file or one that is not an image is an ImageError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read image file {path}: {exc.strerror}") from None
    try:
        check_encoded_size(data)
    except ImageError as exc:
        raise ImageError(f"image file {path}: {exc}") from None
    return data


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
        check_encoded_size(data)
        try:
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                return opened.convert("RGB")
        except UnidentifiedImageError:
            raise ImageError(_not_an_image(data)) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"cannot decode image bytes ({_described(data)}): {exc}") from exc
    if isinstance(image, np.ndarray):
        rgb = np.ascontiguousarray(to_bgr(image)[:, :, ::-1])
        return Image.fromarray(rgb, mode="RGB")
    raise ImageError(
        f"unsupported image type {type(image).__name__}; expected BGR numpy array, PIL image"
        " or PNG/JPEG bytes"
    )


def size_of(image: Image.Image | np.ndarray) -> tuple[int, int]:
    """(width, height) of a PIL image or an H x W x C array."""
    return (image.shape[1], image.shape[0]) if hasattr(image, "shape") else image.size


def _crop(image: Image.Image | np.ndarray, box: tuple[int, int, int, int]) -> Any:
    """PIL's crop, or the same pixels as an array view."""
    left, top, right, bottom = box
    if hasattr(image, "shape"):
        return image[top:bottom, left:right]
    return image.crop(box)


def crop_pixels(image: Image.Image | np.ndarray, roi: PixelRoi) -> Any:
    """Crop (x, y, w, h) in pixels; the ROI must lie inside the image."""
    try:
        x, y, w, h = (int(v) for v in roi)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"roi {roi!r} must be four integers (x, y, width, height)") from exc
    width, height = size_of(image)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ImageError(
            f"roi {roi!r} (x, y, width, height) is empty or outside the {width}x{height} image"
        )
    return _crop(image, (x, y, x + w, y + h))


def fraction_box(size: tuple[int, int], roi: FractionRoi) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixels of a fractional ROI of a width x height image; at
    least one pixel each way."""
    x, y, w, h = roi
    width, height = size
    left, top = math.floor(x * width), math.floor(y * height)
    right = max(left + 1, min(width, math.ceil((x + w) * width)))
    bottom = max(top + 1, min(height, math.ceil((y + h) * height)))
    return left, top, right, bottom


def crop_fraction(image: Image.Image | np.ndarray, roi: FractionRoi) -> Any:
    """Crop a template's fractional ROI; at least one pixel each way survives."""
    return _crop(image, fraction_box(size_of(image), roi))


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
    keep_array: bool = False,
    view_size: tuple[int, int] | None = None,
    mirror: tuple[bool, bool] = (False, False),
) -> Any:
    """Decode, crop (call ROI in pixels, then the template's fractional ROI), fit the budget:
    an RGB PIL image. With `keep_array`, a BGR array input that needs no resize comes back as
    a BGR array view of the same pixels (no PIL round trip: a copy and a channel swap saved).
    With `view_size`, the template's view instead: its ROI box resized to exactly that size at
    any camera resolution (`views`). `mirror` (left-right, top-bottom): the result mirrored, as
    a template's `mirror` parameter asks (`Template.mirroring`)."""
    if any(mirror):
        return _mirrored(
            prepare(image, roi=roi, template_roi=template_roi, max_pixels=max_pixels,
                    keep_array=keep_array, view_size=view_size),
            mirror,
        )  # fmt: skip
    import numpy as np

    view = (
        to_bgr(image)
        if isinstance(image, np.ndarray) and (keep_array or view_size)
        else (to_pil(image))
    )
    if roi is not None:
        view = crop_pixels(view, roi)
    if view_size is not None:
        from pnp_vision.inspect.views import prepare_view

        return prepare_view(view, template_roi, view_size, keep_array)
    if template_roi is not None:
        view = crop_fraction(view, template_roi)
    if isinstance(view, np.ndarray):
        width, height = size_of(view)
        if max_pixels is None or width * height <= max_pixels:
            return view
        view = to_pil(view)
    return fit_pixels(view, max_pixels)


def _mirrored(view: Any, mirror: tuple[bool, bool]) -> Any:
    """`view` (BGR array or PIL image) mirrored left-right and/or top-bottom."""
    import numpy as np
    from PIL import Image

    flip_x, flip_y = mirror
    if isinstance(view, np.ndarray):
        return np.ascontiguousarray(view[:: -1 if flip_y else 1, :: -1 if flip_x else 1])
    if flip_x:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return view.transpose(Image.Transpose.FLIP_TOP_BOTTOM) if flip_y else view


def template_view(image: Any, template: Any, *, roi: PixelRoi | None = None) -> Image.Image:
    """The image the model sees for `template` (an RGB PIL image): the one rule that crops,
    labels, training examples and the console share with the engine's own `prepare` call."""
    view = prepare(
        image,
        roi=roi,
        template_roi=template.roi,
        max_pixels=template.max_pixels,
        view_size=template.view,
    )
    return view if not hasattr(view, "shape") else to_pil(view)


def template_box(
    size: tuple[int, int], template: Any, *, roi: PixelRoi | None = None
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixels of a width x height frame that `template_view` takes
    (the call's `roi`, then the template's ROI or view box): where a console draws it."""
    left, top = (roi[0], roi[1]) if roi is not None else (0, 0)
    inner = (roi[2], roi[3]) if roi is not None else size
    if template.view is not None:
        from pnp_vision.inspect.views import view_box

        box = view_box(inner, template.roi, template.view)
    elif template.roi is not None:
        box = fraction_box(inner, template.roi)
    else:
        box = (0, 0, *inner)
    return box[0] + left, box[1] + top, box[2] + left, box[3] + top
