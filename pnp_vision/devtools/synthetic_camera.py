"""The camera: lighting, sensor noise, and for world frames a whole shot (draw small, turn the
camera, defocus, streak, expose, vignette, resize once, JPEG).

A world frame is drawn on a canvas whose shorter side is at most `Variation.canvas` pixels and
which covers the frame at any camera roll; every optical effect runs at that size, the roll is
one fixed-point remap there, and one resize brings it to the camera's size. So a 1920x1080
world frame costs less than a default 640x480 one. Scenes record where they drew what the
label is about (`Shot.mark`); `shoot` maps those points into the frame.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pnp_vision.devtools.synthetic_variation import Variation


@dataclass
class Shot:
    """What a world scene knows of the camera, and what it drew (canvas pixels)."""

    rotation: float  # degrees the camera turns the canvas on its way into the frame
    marks: dict[str, list[list[float]]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def mark(self, name: str, *points: tuple[float, float]) -> None:
        self.marks.setdefault(name, []).extend([float(x), float(y)] for x, y in points)

    def reticle_angle(self, rng: np.random.Generator) -> float:
        """A reticle's angle on the canvas: turned with the camera (0) or drawn square to the
        frame (the overlay of a camera whose image is not rotated), half the time each."""
        if not self.rotation:
            return 0.0
        return 0.0 if rng.random() < 0.5 else self.rotation  # the roll takes it off again


_GRID = np.mgrid[0:32, 0:32].astype(np.float32) / 31 - 0.5
_GRID.flags.writeable = False


def light(
    img: np.ndarray,
    rng: np.random.Generator,
    harsh: float = 1.0,
    gain: float = 1.0,
    vignette: float = 0.0,
    frame: tuple[float, float] | None = None,
) -> np.ndarray:
    """Gain, colour cast, a brightness ramp in a random direction and a vignette; `harsh`
    widens every range by that factor (1: the original ranges, drawn exactly as before).
    `gain` (an exposure) and `vignette` (a radial loss, reaching `vignette` at the corners of
    a `frame` = (w, h) in canvas pixels) draw no numbers: the caller drew them."""
    h, w = img.shape[:2]
    ys, xs = _GRID  # smooth: compute small
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    if harsh == 1.0:
        gain_range, slope, vig, cast_range = (0.65, 1.3), 0.6, 0.35, (0.85, 1.15)
    else:
        gain_range = (max(0.15, 1 - 0.35 * harsh), 1 + 0.3 * harsh)
        slope, vig = min(1.6, 0.6 * harsh), min(0.9, 0.35 * harsh)
        cast_range = (max(0.3, 1 - 0.15 * harsh), 1 + 0.15 * harsh)
    lit = rng.uniform(*gain_range) * (1 + rng.uniform(0, slope) * ramp)
    lit *= 1 - rng.uniform(0, vig) * 2 * (xs**2 + ys**2)
    lit = np.maximum(lit, 0.02, out=lit)  # a steep ramp must not go negative
    if vignette and frame is not None:  # radial, in the frame's own half-diagonals
        r2 = ((xs * w) ** 2 + (ys * h) ** 2) / ((frame[0] / 2) ** 2 + (frame[1] / 2) ** 2)
        lit *= np.clip(1 - vignette * r2, 0.05, 1)
    if gain != 1.0:
        lit *= np.float32(gain)
    cast = rng.uniform(*cast_range, size=3).astype(np.float32)
    field3 = cv2.resize((lit[..., None] * cast).astype(np.float32), (w, h))
    return cv2.multiply(img.astype(np.float32), field3)


@functools.lru_cache(maxsize=8)
def _noise_tile(w: int, h: int) -> np.ndarray:
    """Unit Gaussian noise, a little larger than a frame; frames take shifted crops of it
    (drawing fresh noise per frame was most of the generator's time)."""
    tile = np.random.default_rng(0x5EED).standard_normal((h + 64, w + 64, 3), dtype=np.float32)
    tile.flags.writeable = False
    return tile


def noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    h, w = shape[:2]
    x, y = rng.integers(0, 65, size=2)
    return _noise_tile(w, h)[y : y + h, x : x + w]


_WORLD_TILE = 704  # world canvases up to 640 pixels a side share one tile of noise


def world_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit Gaussian noise of any shape up to 640 a side, cropped from one shared tile."""
    h, w = shape[:2]
    if max(h, w) > _WORLD_TILE - 64:
        return noise(shape, rng)
    tile = _noise_tile(_WORLD_TILE - 64, _WORLD_TILE - 64)
    x, y = rng.integers(0, _WORLD_TILE - w + 1), rng.integers(0, _WORLD_TILE - h + 1)
    return tile[y : y + h, x : x + w]


def jpeg(image: np.ndarray, rng: np.random.Generator, var: Variation) -> np.ndarray:
    """The frame through a JPEG camera stream (blocks and ringing), for `jpeg_share` of
    frames when `jpeg_quality` is set."""
    if var.jpeg_quality is None or (var.jpeg_share < 1 and rng.random() >= var.jpeg_share):
        return image
    quality = int(rng.integers(var.jpeg_quality[0], var.jpeg_quality[1] + 1))
    _, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def _roll(img: np.ndarray, turn: float, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The canvas turned `turn` degrees about its centre (counter-clockwise on screen) and cut
    to `size` around it, and the 2x3 map from canvas to result. A remap through fixed-point
    maps computed here: OpenCV's warpAffine and float-map remap interpolate differently in 4.x
    and 5.x, its fixed-point tables do not (the frames stay byte-identical across both)."""
    ch, cw = img.shape[:2]
    fw, fh = size
    rad = np.deg2rad(turn)
    rot = np.array([[np.cos(rad), np.sin(rad)], [-np.sin(rad), np.cos(rad)]])
    fwd = np.hstack([rot, (np.array([fw / 2, fh / 2]) - rot @ (cw / 2, ch / 2))[:, None]])
    back = rot.T * 32  # result pixel -> canvas pixel in 1/32 pixels (OpenCV's table steps)
    xs, ys = np.arange(fw) - fw / 2, np.arange(fh) - fh / 2

    def steps(col: int, centre: float) -> np.ndarray:  # an affine map: a row plus a column
        row = np.rint(back[col, 0] * xs + centre * 32).astype(np.int32)
        return row[None, :] + np.rint(back[col, 1] * ys).astype(np.int32)[:, None]

    x32, y32 = steps(0, cw / 2), steps(1, ch / 2)
    whole = np.empty((fh, fw, 2), np.int16)
    np.right_shift(x32, 5, out=whole[..., 0], casting="unsafe")
    np.right_shift(y32, 5, out=whole[..., 1], casting="unsafe")
    frac = ((y32 & 31) << 5 | (x32 & 31)).astype(np.uint16)
    out = cv2.remap(img, whole, frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, fwd


def _frame_in_canvas(size: tuple[int, int], k: float) -> tuple[int, int]:
    """The frame's size on a canvas `k` times as fine, with exactly the frame's aspect ratio
    (so one resize scales both axes alike and label distances stay exact)."""
    w, h = size
    if k >= 1:
        return w, h
    g = int(np.gcd(w, h))
    a, b = w // g, h // g
    n = max(1, round(min(w, h) * k / min(a, b)))
    return (a * n, b * n) if a * n < w else (w, h)


def _range(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(r[0] if r[0] == r[1] else rng.uniform(*r))


Draw = Callable[[np.ndarray, float, Shot], list[dict[str, Any]]]


def shoot(
    draw: Draw,
    size: tuple[int, int],
    rng: np.random.Generator,
    var: Variation,
    *,
    lighting: bool,
    blur: bool,
    noise_sigma: float,
    rotate: bool = True,
) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """A world frame: (BGR image of `size`, the scene's questions, what it drew in frame
    pixels). `draw(canvas, units, shot)` draws the scene centred on the canvas; `rotate`:
    whether the scene is a world scene, whose labels survive a turned camera and a small
    canvas (a classic scene is drawn at the frame's size, square to it: a corner named "top
    left" stays top left, and a marking keeps the pixels its legibility was set for)."""
    w, h = size
    k = 1.0 if var.canvas is None or not rotate else min(1.0, var.canvas / min(w, h))
    fw, fh = _frame_in_canvas(size, k)  # the frame, in canvas pixels
    turn = 0.0
    if rotate and var.rotation != (0.0, 0.0):
        turn = _range(rng, var.rotation) * (1 if rng.random() < 0.5 else -1)
    rad = np.deg2rad(turn)
    cw = int(np.ceil(abs(fw * np.cos(rad)) + abs(fh * np.sin(rad)) - 1e-6))
    ch = int(np.ceil(abs(fw * np.sin(rad)) + abs(fh * np.cos(rad)) - 1e-6))
    canvas = np.zeros((ch, cw, 3), np.uint8)
    u = min(fw, fh) / 224.0
    shot = Shot(turn)
    questions = draw(canvas, u, shot)

    # every number first, then the light, one blur (defocus and the lens's own softness
    # together), the streak and the noise, all at the canvas's size
    sigma2 = 0.0
    if blur and var.defocus != (0.0, 0.0):
        sigma2 += (_range(rng, var.defocus) * u) ** 2
    streak = 0
    if blur and var.motion_blur != (0.0, 0.0):  # along a canvas axis: the roll turns it
        streak = 2 * round(_range(rng, var.motion_blur) * u / 2) + 1  # odd: centred
        along_x = rng.random() < 0.5
    gain = 2.0 ** _range(rng, var.exposure) if var.exposure != (0.0, 0.0) else 1.0
    vignette = _range(rng, var.vignette) if var.vignette != (0.0, 0.0) else 0.0
    if blur and rng.random() < 0.7:  # the lens's own softness
        sigma2 += (rng.uniform(0.3, 1.2) * u) ** 2
    lo, hi = var.harshness
    harsh = lo if lo == hi else rng.uniform(lo, hi)
    if lighting:
        out = light(canvas, rng, harsh, gain, vignette, (fw, fh))
    else:
        out = canvas.astype(np.float32)
    if sigma2 > 0.04:  # OpenCV blurs floats faster than bytes
        out = cv2.GaussianBlur(out, (0, 0), float(np.sqrt(sigma2)))
    if streak > 1:
        out = cv2.blur(out, (streak, 1) if along_x else (1, streak))
    if noise_sigma > 0:
        out = cv2.scaleAdd(world_noise(out.shape, rng), rng.uniform(0.1, 1.0) * noise_sigma, out)
    image = np.clip(out + 0.5, 0, 255, out=out).astype(np.uint8)

    m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # canvas pixel -> frame pixel
    if turn:
        image, m = _roll(image, turn, (fw, fh))
    if (fw, fh) != (w, h):  # one resize, the same scale both ways (pixel centres: OpenCV's)
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        s = w / fw
        m = s * m
        m[:, 2] += 0.5 * s - 0.5
    image = jpeg(image, rng, var)

    def frame_points(pts: list[float] | list[list[float]]) -> list[float]:
        xy = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return [float(v) for v in (xy @ m[:, :2].T + m[:, 2]).ravel()]

    units = min(w, h) / 224.0
    for q in questions:
        if "points" in q:
            q["points"] = frame_points(q["points"])
            if q["template"] == "nozzle_alignment":  # the tip's offset, in the frame's units
                tx, ty, cx, cy = q["points"]
                q["offset"] = [(tx - cx) / units, (ty - cy) / units]
    drawn = {name: frame_points(pts) for name, pts in shot.marks.items()}
    drawn.update(shot.facts, rotation=turn, units=units)
    return image, questions, drawn
