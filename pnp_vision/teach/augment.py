"""Label-preserving changes of a labelled frame: a few hundred frames show the model many more
views, all with the same answer.

Geometry only as the template allows (`symmetries`: its view mirrored, turned a quarter turn,
or moved by up to `SHIFT` of its size); light on every view: exposure, contrast, gamma and
colour balance within a camera's ordinary range, which no shipped check's answer depends on.
Both change only the template's view box of the frame, so the view the model sees is exactly
the changed one.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

SHIFT = 0.15  # a `shift` symmetry moves the view by up to this share of its size each way


def augmented(bgr: np.ndarray, template: Any, rng: random.Random) -> np.ndarray:
    """The frame with the template's view changed as its `symmetries` allow: with `turn`, half
    the time a quarter turn (either way) about the view's centre; mirrored by a random choice of
    its flips (each on or off); with `shift`, cut from a box moved by a random amount up to
    `SHIFT` of its size each way. Boxes are kept inside the frame. The view's box is rewritten
    in place, so the view the model sees is exactly the changed view."""
    from pnp_vision.inspect.views import view_box

    if not template.symmetries or template.view is None:
        return bgr
    symmetries = template.symmetries
    height, width = bgr.shape[:2]
    left, top, right, bottom = view_box((width, height), template.roi, template.view)
    turns = 0
    if "turn" in symmetries and rng.random() < 0.5:
        turns = rng.choice((1, 3))  # counter-clockwise quarter turns (np.rot90)
    flips = [s for s in symmetries if s.startswith("flip") and rng.random() < 0.5]
    # the source box: the view's own, or for a turn the box of swapped sides about its centre
    w, h = (right - left, bottom - top) if turns == 0 else (bottom - top, right - left)
    if w > width or h > height:  # a frame too narrow to turn the view in: no turn
        turns, w, h = 0, right - left, bottom - top
    x0 = min(max(round((left + right - w) / 2), 0), width - w)
    y0 = min(max(round((top + bottom - h) / 2), 0), height - h)
    if "shift" in symmetries:
        dx = round(rng.uniform(-SHIFT, SHIFT) * w)
        dy = round(rng.uniform(-SHIFT, SHIFT) * h)
        x0, y0 = min(max(x0 + dx, 0), width - w), min(max(y0 + dy, 0), height - h)
    out = bgr.copy()
    # from the original frame: never a view of what is being written
    box = np.rot90(bgr[y0 : y0 + h, x0 : x0 + w], turns)
    if "flip_x" in flips:
        box = box[:, ::-1]
    if "flip_y" in flips:
        box = box[::-1]
    out[top:bottom, left:right] = box
    return out


# each way, as the log of a factor: exposure, contrast about mid-grey, gamma, per-channel gain
EXPOSURE, CONTRAST, GAMMA, TINT = 0.4, 0.3, 0.3, 0.08


def relit(bgr: np.ndarray, template: Any, rng: random.Random) -> np.ndarray:
    """The frame with the template's view box relit: exposure, contrast, gamma and colour balance
    drawn from a camera's ordinary range, as one lookup table per channel (a relit 512x384 box
    costs about a millisecond). A new array; the rest of the frame as it was."""
    import cv2

    from pnp_vision.inspect.views import view_box

    height, width = bgr.shape[:2]
    if template.view is not None:
        left, top, right, bottom = view_box((width, height), template.roi, template.view)
    else:
        left, top, right, bottom = 0, 0, width, height
    gamma = np.exp(rng.uniform(-GAMMA, GAMMA))
    contrast = np.exp(rng.uniform(-CONTRAST, CONTRAST))
    gains = np.exp([rng.uniform(-TINT, TINT) for _ in range(3)]) * np.exp(
        rng.uniform(-EXPOSURE, EXPOSURE)
    )
    levels = ((np.arange(256) / 255.0) ** gamma - 0.5) * contrast + 0.5
    table = np.clip(levels[:, None] * gains[None, :] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = bgr.copy()
    out[top:bottom, left:right] = cv2.LUT(bgr[top:bottom, left:right], table[None])
    return out


__all__ = ["SHIFT", "augmented", "relit"]
