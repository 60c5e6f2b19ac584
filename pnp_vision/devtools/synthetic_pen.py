"""Drawing in millimetres: a pen with a local frame (origin, rotation, pixels per mm).

The world scenes describe parts, tips, tapes and pads at their real sizes; the pen turns those
millimetres into the canvas's fixed-point cv2 primitives (the same anti-aliased, sub-pixel
calls as `synthetic_scenes`, so frames stay byte-identical across OpenCV versions). Shapes of
one colour go to cv2 in one call: a QFP's 144 leads are one `fillPoly`.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

from pnp_vision.devtools.synthetic_scenes import _AA, _ONE, _SHIFT, Range

Color = tuple[int, int, int]
_CORNERS = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])


class Pen:
    """Draws shapes given in millimetres of a local frame onto a canvas; a pen may hold
    several poses (origins and angles) and then draws every shape at each of them, in the same
    calls (the parts of a whole reel of pockets cost what one part does)."""

    def __init__(
        self,
        img: np.ndarray,
        origin: Sequence[float] | np.ndarray,
        px_per_mm: float,
        angle: float | np.ndarray = 0.0,
        squash: float = 1.0,
    ) -> None:
        self.img, self.s = img, float(px_per_mm)
        self.origin = np.asarray(origin, dtype=np.float64).reshape(-1, 2)
        self.angle = np.broadcast_to(np.asarray(angle, dtype=np.float64), len(self.origin))
        rad = np.deg2rad(self.angle)
        cos, sin = np.cos(rad) * self.s, np.sin(rad) * self.s
        # (poses, 2, 2): rotation times the x squash times the scale, per pose
        self._m = np.stack([np.stack([cos * squash, -sin], 1), np.stack([sin * squash, cos], 1)], 1)

    def at(self, x: float, y: float, angle: float | np.ndarray = 0.0, squash: float = 1.0) -> Pen:
        """A pen whose origin is (x, y) mm of this one, turned `angle` degrees more, its x
        axis shortened by `squash` (a face tilted away from the camera)."""
        return Pen(self.img, self.px([(x, y)])[:, 0], self.s, self.angle + angle, squash)

    def px(self, pts: Sequence | np.ndarray) -> np.ndarray:
        """Canvas pixel coordinates (poses, n, 2) of n points given in mm."""
        xy = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return (self._m @ xy.T).transpose(0, 2, 1) + self.origin[:, None, :]

    def _fill(self, polys: np.ndarray, color: Color) -> None:
        """Fills polygons given as one (n, k, 2) array of pixel coordinates, in one call."""
        pts = np.rint(polys * _ONE).astype(np.int32)
        cv2.fillPoly(self.img, list(pts), color, _AA, _SHIFT)

    def boxes(self, centres: Sequence | np.ndarray, sizes: Sequence | np.ndarray, color: Color):
        """Axis-aligned (in this frame) boxes, (n, 2) centres and (n, 2) or (2,) sizes."""
        c = np.asarray(centres, dtype=np.float64).reshape(-1, 1, 2)
        if not len(c):
            return
        sz = np.asarray(sizes, dtype=np.float64).reshape(-1, 1, 2)
        corners = (c + sz * _CORNERS).reshape(-1, 2)  # (n * 4, 2)
        self._fill(self.px(corners).reshape(-1, 4, 2), color)

    def box(self, x: float, y: float, w: float, h: float, color: Color) -> None:
        self.boxes([(x, y)], (w, h), color)

    def poly(self, pts: Sequence | np.ndarray, color: Color) -> None:
        self._fill(self.px(pts), color)

    def rounded(self, x: float, y: float, w: float, h: float, r: float, color: Color) -> None:
        """A box with corners of radius `r` mm (r = half the short side: a stadium)."""
        r = min(r, w / 2, h / 2)
        t = np.linspace(0, np.pi / 2, 5)
        arc = np.stack([np.cos(t), np.sin(t)], axis=1) * r
        hx, hy = w / 2 - r, h / 2 - r
        flip = arc[:, ::-1]
        pts = np.concatenate(
            [arc * (1, 1), flip * (-1, 1), arc * (-1, -1), flip * (1, -1)]
        ) + np.repeat([(hx, hy), (-hx, hy), (-hx, -hy), (hx, -hy)], len(t), axis=0)
        self.poly(pts + np.array([x, y]), color)

    def circle(self, x: float, y: float, r: float, color: Color, width: float = 0.0) -> None:
        """A disc of radius `r` mm, or a ring `width` mm wide (at least one pixel)."""
        t = -1 if width <= 0 else max(1, round(width * self.s))
        rad = round(r * self.s * _ONE)
        for cx, cy in np.rint(self.px([(x, y)]).reshape(-1, 2) * _ONE).astype(int).tolist():
            cv2.circle(self.img, (cx, cy), rad, color, t, _AA, _SHIFT)

    def circles(self, centres: Sequence | np.ndarray, r: float, color: Color) -> None:
        pts = np.rint(self.px(centres).reshape(-1, 2) * _ONE).astype(np.int64)
        rad = max(1, round(r * self.s * _ONE))
        for x, y in pts.tolist():
            cv2.circle(self.img, (x, y), rad, color, -1, _AA, _SHIFT)

    def line(self, p: Sequence[float], q: Sequence[float], width: float, color: Color) -> None:
        t = max(1, round(width * self.s))
        ends = np.rint(self.px([p, q]) * _ONE).astype(np.int32)  # (poses, 2, 2)
        cv2.polylines(self.img, list(ends), False, color, t, _AA, _SHIFT)


def scale(rng: np.random.Generator, fov_mm: Range, size_mm: float, size_units: Range) -> float:
    """Units per mm for one frame: log-uniform over what the camera can be (its shorter side
    spans `fov_mm`) and what draws an object `size_mm` long at `size_units` (the subject must
    stay big enough to judge in a template's view, and inside it); the subject wins when the
    two ranges do not meet."""
    lo = max(224.0 / fov_mm[1], size_units[0] / size_mm)
    hi = min(224.0 / fov_mm[0], size_units[1] / size_mm)
    if lo > hi:
        lo, hi = size_units[0] / size_mm, size_units[1] / size_mm
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of `options`, uniformly (one option draws no number)."""
    return options[int(rng.integers(len(options)))] if len(options) > 1 else options[0]


def shade(color: Sequence[float], k: float) -> Color:
    """`color` times `k`, clipped to 0..255."""
    b, g, r = (min(255, max(0, round(v * k))) for v in color)
    return int(b), int(g), int(r)


def jitter(rng: np.random.Generator, color: Sequence[float], spread: float) -> Color:
    """`color` with each channel moved by up to +-`spread`."""
    b, g, r = (min(255, max(0, round(float(v) + d))) for v, d in
               zip(color, rng.uniform(-spread, spread, size=3).tolist(), strict=True))  # fmt: skip
    return int(b), int(g), int(r)


def metal(rng: np.random.Generator, lo: int = 170, hi: int = 245) -> Color:
    """Tin or nickel under a ring light: bright, nearly grey, a little warm or cold."""
    level = float(rng.uniform(lo, hi))
    return jitter(rng, (level, level, level + rng.uniform(-6, 10)), 6)


def any_color(rng: np.random.Generator) -> Color:
    """A saturated colour of any hue, or white / black now and then (a reticle's colour)."""
    roll = rng.random()
    if roll < 0.12:
        return jitter(rng, (240, 240, 240), 15)
    if roll < 0.2:
        return jitter(rng, (15, 15, 15), 15)
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.55, 1.0), rng.uniform(0.7, 1.0))
    return int(b * 255), int(g * 255), int(r * 255)
