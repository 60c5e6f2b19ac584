"""Resolution-independent views: a template's ROI becomes the same image at any camera size.

Without this, a template's ROI was cropped and then fitted under a pixel budget, so the image
the model saw (and its number of image tokens) followed the camera: 12 tokens at 320x240, 15 at
1280x720, 4 at 160x120. The same nozzle on another camera was another input. A template with a
`view = [W, H]` is instead cropped to a box of the view's aspect ratio and resized to exactly
W x H pixels, so every camera gives the model the same grid, and the scene at the same scale.

The rule (docs/evaluation.md): the box keeps the ROI's centre and its height, and takes the
width the view's aspect ratio asks for (W / H x height). Where that is wider than the frame,
the box keeps the frame's width and takes its height from the aspect ratio. A box that would
reach past the frame's edge is moved back inside. So on a landscape camera of any aspect ratio
(4:3, 16:9, ...) a view shows the same stretch of the scene, measured in the frame's height.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

FractionRoi = tuple[float, float, float, float]
ViewSize = tuple[int, int]  # width, height in pixels


def view_box(
    frame: tuple[int, int], roi: FractionRoi | None, view: ViewSize
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in pixels of the box a `view` takes from a frame of size
    `frame` = (width, height), for a template ROI in fractions (None: the whole frame)."""
    width, height = frame
    x, y, w, h = roi if roi is not None else (0.0, 0.0, 1.0, 1.0)
    aspect = view[0] / view[1]
    box_h = h * height
    box_w = box_h * aspect
    if box_w > width:
        box_w, box_h = float(width), width / aspect
    bw, bh = max(1, min(width, round(box_w))), max(1, min(height, round(box_h)))
    cx, cy = (x + w / 2) * width, (y + h / 2) * height
    left = min(max(0, round(cx - bw / 2)), width - bw)
    top = min(max(0, round(cy - bh / 2)), height - bh)
    return left, top, left + bw, top + bh


def render_view(bgr: np.ndarray, roi: FractionRoi | None, view: ViewSize) -> np.ndarray:
    """The view of a BGR frame: its box, resized to exactly `view` (a new BGR uint8 array).

    Shrinking averages the pixels it merges (INTER_AREA: no aliasing, so a large camera's fine
    noise averages out as it would in the lens); growing interpolates linearly."""
    import cv2
    import numpy as np

    left, top, right, bottom = view_box((bgr.shape[1], bgr.shape[0]), roi, view)
    crop = bgr[top:bottom, left:right]
    if crop.shape[1] == view[0] and crop.shape[0] == view[1]:
        return np.ascontiguousarray(crop)
    shrink = crop.shape[1] >= view[0] and crop.shape[0] >= view[1]
    method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(crop, view, interpolation=method)


def prepare_view(image: Any, roi: FractionRoi | None, view: ViewSize, keep_array: bool) -> Any:
    """`render_view` for any decoded image (BGR array or RGB PIL image): a BGR array with
    `keep_array` and an array input, else an RGB PIL image (the same pixels either way)."""
    import numpy as np
    from PIL import Image

    is_array = isinstance(image, np.ndarray)
    bgr = image if is_array else np.asarray(image.convert("RGB"))[:, :, ::-1]
    out = render_view(bgr, roi, view)
    if keep_array and is_array:
        return out
    return Image.fromarray(np.ascontiguousarray(out[:, :, ::-1]), mode="RGB")
