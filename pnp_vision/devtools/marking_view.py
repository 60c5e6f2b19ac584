"""What the part_marking and polarity_mark views show of a world chip frame: the cues' rule.

The marking text has a legibility limit (`synthetic_marking.MIN_CAP`); a corner cue (a pin-1
dot, printed or a moulded dimple, or a chamfered corner) has this one: a polarity question is
asked only where the cue shows in the view the model gets. It is measured on the final frame
(after the light, exposure, defocus, streak, noise and JPEG the camera adds, which a scene
does not see while it draws), through the template's own view (`render_view`): the cue's
width in view pixels, and its contrast, the mean grey of the cue (or of one of the looks it is
drawn with: a dimple's lit rim, its darker core) against the body just around it, less what
the same footprint reads in the body's other three corners. `bench/cue_visibility.py`
measures both on the training stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pnp_vision.devtools.marking_parts import Cue, Shape
from pnp_vision.inspect.views import render_view, view_box

# prompts/part_marking.toml's (and polarity_mark's) ROI and view: the part sits in the middle
# half of the frame, and marking sizes are set in the view's pixels
ROI = (0.25, 0.25, 0.5, 0.5)
VIEW = (224, 168)
# Both measured by bench/cue_visibility.py on 2000 chip frames of the training stream (WORLD).
# The cue's width (a dot's diameter, a chamfer's cut) in view pixels, at least: narrower, a cue
# is a speck of a few pixels, not a shape. A floor more than a limit: no cue the world draws
# is narrower than about 4.5 px, and the contrast reading is not noise-bound there (an empty
# corner's footprint reads at most 3 grey levels at its 99th percentile from 1 to 6 px wide).
MIN_CUE_SIZE = 4.0
# Grey levels by which the cue's corner reads more than the same footprint in any other corner
# of the body (so an uncut corner's blurred edge or an ejector-pin mark does not pass for a
# cue): twice what an empty corner reads at its 99th percentile (7 levels: noise, JPEG, glare,
# edges, ejector-pin marks). Printed dots pass (97%), moulded dimples mostly do not (23%, a
# median of 11 levels under the world camera's dim exposures). On the safe side: by eye, a
# large dimple reading 8-14 often shows, one under 8 seldom.
MIN_CUE_CONTRAST = 14.0
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Sight:
    """A corner cue as the scene drew it: `pose` maps the part's millimetres to frame pixels
    (`marking_parts.pose_matrix`; the chip scene is drawn at the frame's own size and never
    turned, so its canvas is the frame), `body` is the body's half length and width (mm)."""

    cue: Cue
    pose: np.ndarray
    body: tuple[float, float]

    @property
    def look(self) -> str:
        """ "dimple" (a moulded dot: lit rim, dark core), "dot" (printed) or "chamfer"."""
        if self.cue.kind == "dot":
            return "dimple" if len(self.cue.shapes) > 1 else "dot"
        return self.cue.kind


@dataclass(frozen=True)
class Reading:
    """What the view shows of a cue: its `width` (view px), its `contrast` against the body
    around it and the most the same footprint reads in the body's other three corners
    (`elsewhere`), both in grey levels."""

    width: float
    contrast: float
    elsewhere: float

    @property
    def shows(self) -> bool:
        """Whether the cue shows: wide enough, and its corner stands out from the others."""
        return self.width >= MIN_CUE_SIZE and self.contrast - self.elsewhere >= MIN_CUE_CONTRAST


def _fill(mask: np.ndarray, shape: Shape, m: np.ndarray, value: int) -> None:
    """`shape` (mm) into `mask` through `m` (mm to mask pixels): the pixels whose centres it
    covers, no anti-aliasing."""
    pts = np.round((shape.pts @ m[:, :2].T + m[:, 2]) * _ONE).astype(np.int32)
    if shape.r > 0:
        radius = round(shape.r * float(np.sqrt(abs(np.linalg.det(m[:, :2])))) * _ONE)
        cv2.circle(mask, (int(pts[0, 0]), int(pts[0, 1])), radius, value, -1, cv2.LINE_8, _SHIFT)
    else:
        cv2.fillPoly(mask, [pts], value, cv2.LINE_8, _SHIFT)


def _contrast(grey: np.ndarray, m: np.ndarray, shapes: tuple[Shape, ...], body: Shape) -> float:
    """The largest difference of mean grey between the footprint of `shapes` (all of it, or
    each shape as it shows) and the body around it (out to half the footprint's width, at
    least 2 px, less a pixel at the body's edge); 0 where no body is left around it."""
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    pts = np.vstack([s.pts for s in shapes]) @ m[:, :2].T + m[:, 2]
    radius = max(s.r for s in shapes) * scale  # discs reach this far past their centres
    lo, hi = pts.min(axis=0) - radius, pts.max(axis=0) + radius
    reach = max(2.0, float((hi - lo).max()) / 2)
    x0, y0 = (max(0, int(v)) for v in lo - reach - 2)  # a window around the footprint
    x1, y1 = (int(v) + 1 for v in hi + reach + 2)
    window = grey[y0:y1, x0:x1]
    local = m - np.array([[0.0, 0.0, x0], [0.0, 0.0, y0]])
    layers = np.zeros(window.shape, np.uint8)
    for k, shape in enumerate(shapes, 1):
        _fill(layers, shape, local, k)
    inside = np.zeros(window.shape, np.uint8)
    _fill(inside, body, local, 1)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8), borderValue=1)
    off = (layers == 0).astype(np.uint8)
    near = cv2.distanceTransform(off, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= reach
    ring = near & (off > 0) & (inside > 0)
    if not ring.any():
        return 0.0
    around = float(window[ring].mean())
    regions = [layers > 0] + [layers == k for k in range(1, len(shapes) + 1)]
    return max((abs(float(window[r].mean()) - around) for r in regions if r.any()), default=0.0)


def measure(image: np.ndarray, sight: Sight) -> Reading:
    """The cue in `image`'s view (`render_view`, as the engine makes it), and the same
    footprint mirrored into the body's other corners."""
    h, w = image.shape[:2]
    left, top, right, bottom = view_box((w, h), ROI, VIEW)
    sx, sy = VIEW[0] / (right - left), VIEW[1] / (bottom - top)
    # frame pixels to view pixels, pixel centres mapped as cv2.resize maps them
    to_view = np.array([[sx, 0.0, (0.5 - left) * sx - 0.5], [0.0, sy, (0.5 - top) * sy - 0.5]])
    m = to_view @ np.vstack([sight.pose, [0.0, 0.0, 1.0]])
    width = 2 * sight.cue.reach * float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    grey = render_view(image, ROI, VIEW).astype(np.float32).mean(axis=2)
    bx, by = sight.body
    body = Shape(np.array([(-bx, -by), (bx, -by), (bx, by), (-bx, by)]), (0, 0, 0))
    own, *others = (
        _contrast(grey, m, tuple(Shape(s.pts * flip, s.color, s.r) for s in sight.cue.shapes), body)
        for flip in (np.array([1, 1]), np.array([-1, 1]), np.array([1, -1]), np.array([-1, -1]))
    )
    return Reading(width, own, max(others))


def ask_where_seen(image: np.ndarray, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`questions` less those about a cue (they carry its `sight`) that does not show in
    `image`'s view; a kept one records the cue's `look` and its `Reading` (`width`, view px;
    `contrast` and `elsewhere`, grey levels) as `cue`."""
    kept, seen = [], {}
    for q in questions:
        sight = q.pop("sight", None)
        if sight is None:
            kept.append(q)
            continue
        if id(sight) not in seen:
            seen[id(sight)] = measure(image, sight)
        reading = seen[id(sight)]
        if reading.shows:
            cue = {"look": sight.look, "width": round(reading.width, 2),
                   "contrast": round(reading.contrast, 1),
                   "elsewhere": round(reading.elsewhere, 1)}  # fmt: skip
            kept.append({**q, "cue": cue})
    return kept
