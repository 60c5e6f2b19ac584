"""The down-looking camera over a board: textured boards (solder mask, weave, copper, vias,
silkscreen, neighbours) and tombstones of every two-terminal chip at real sizes.

A tombstone stands on one end on its pad, or is lifted past `STANDING_MIN` degrees; a flat part
lies on both pads (tilted up to `FLAT_MAX`, shifted and turned a little). The projection is the
real one of a box L x W x T pivoting on its bottom outer edge: the top face shortened to
L cos(tilt), the lifted end face T sin(tilt) long.
"""

from __future__ import annotations

import cv2
import numpy as np

from pnp_vision.devtools.glyphs import draw_text
from pnp_vision.devtools.synthetic_camera import Shot, world_noise
from pnp_vision.devtools.synthetic_packages import Part, sample_part
from pnp_vision.devtools.synthetic_pen import Color, Pen, jitter, metal, pick, scale, shade
from pnp_vision.devtools.synthetic_scenes import (
    Question,
    Variation,
    _board,
    _color,
    _crosshair_centre,
    _q,
)
from pnp_vision.devtools.synthetic_scenes import tombstone as classic_tombstone
from pnp_vision.devtools.synthetic_variation import CLASSIC, TWO_TERMINAL

DOWN_CAMERA_FOV = (3.0, 30.0)  # mm across a board camera's shorter side
CHIP_UNITS = (24.0, 70.0)  # the tombstone chip's length in units: judgeable in the view
FOOTPRINT_UNITS = 110.0  # its pads end to end at most: inside the view at any angle
NEIGHBOUR_UNITS = 150.0  # other parts only this far out: outside any template's view
_MASKS = ((40, 110, 30), (60, 125, 25), (90, 50, 20), (30, 30, 30), (30, 30, 110),
          (215, 220, 220), (90, 40, 80), (40, 170, 200), (25, 70, 25))  # fmt: skip
_FINISHES = ((70, 170, 215), (200, 200, 205), (90, 130, 200))  # ENIG gold, HASL tin, copper
_SILK = ((232, 236, 236), (60, 205, 230), (30, 30, 30))


def board(img: np.ndarray, rng: np.random.Generator, ppm: float) -> Color:
    """A textured board at `ppm` pixels per mm: solder mask with its weave, copper under the
    mask (pours, traces), vias. Returns the mask colour."""
    h, w = img.shape[:2]
    mask = jitter(rng, _MASKS[int(rng.integers(len(_MASKS)))], 12)
    grain = max(2, round(rng.uniform(0.15, 0.5) * ppm))  # the glass weave, a few px a cell
    sh, sw = max(2, h // grain), max(2, w // grain)
    weave = world_noise((sh, sw), rng)[:, :, :1] * rng.uniform(2, 7) + np.asarray(mask, np.float32)
    img[:] = cv2.resize(np.clip(weave, 0, 255).astype(np.uint8), (w, h))
    copper = shade(mask, rng.uniform(1.15, 1.45))
    pen = Pen(img, (0, 0), ppm)
    size = np.array([w, h]) / ppm
    for _ in range(int(rng.integers(0, 3))):  # copper pours
        pen.box(*(rng.uniform(0, 1, 2) * size), *(rng.uniform(0.2, 0.7, 2) * size), copper)
    for _ in range(int(rng.integers(2, 9))):  # traces at 0, 45 or 90 degrees
        p = rng.uniform(0, 1, 2) * size
        d = np.exp(1j * np.pi / 4 * int(rng.integers(8))) * rng.uniform(0.3, 1.0) * size.max()
        pen.line(p, p + np.array([d.real, d.imag]), rng.uniform(0.12, 0.5), copper)
    ring = copper if rng.random() < 0.5 else metal(rng)
    for _ in range(int(rng.integers(0, 10))):  # vias
        x, y, r = *(rng.uniform(0, 1, 2) * size), rng.uniform(0.25, 0.45)
        pen.circle(x, y, r, ring)
        pen.circle(x, y, r * rng.uniform(0.4, 0.6), shade(mask, 0.4))
    return mask


def _pad(pen: Pen, x: float, length: float, width: float, shape: str, color: Color) -> None:
    """One pad centred at `x` along the part's axis, its outer end shaped by `shape`."""
    if shape in ("rect", CLASSIC):
        pen.box(x, 0, length, width, color)
    elif shape == "rounded":
        pen.rounded(x, 0, length, width, min(length, width) * 0.25, color)
    elif shape == "oval":
        pen.rounded(x, 0, length, width, min(length, width) / 2, color)
    else:  # "home": a home-plate pad, pointed toward the part
        s = 1 if x < 0 else -1  # the side facing the part
        a, b, half = x - s * length / 2, x + s * length / 2, width / 2
        tip = b - s * min(length * 0.35, half)
        pen.poly([(a, -half), (tip, -half), (b, 0), (tip, half), (a, half)], color)


def _outline(pen: Pen, half_l: float, half_w: float, width: float, color: Color, corners: bool):
    """A silkscreen rectangle, or just its corners."""
    pts = [(-half_l, -half_w), (half_l, -half_w), (half_l, half_w), (-half_l, half_w)]
    for i, p in enumerate(pts):
        q = pts[(i + 1) % 4]
        if corners:
            a, b = np.asarray(p), np.asarray(q)
            pen.line(a, a + (b - a) * 0.25, width, color)
            pen.line(b, b + (a - b) * 0.25, width, color)
        else:
            pen.line(p, q, width, color)


def _neighbours(img: np.ndarray, rng: np.random.Generator, c, ppm: float, u: float) -> None:
    """A few other parts on the board, far enough out to stay outside every view."""
    for _ in range(int(rng.integers(0, 5))):
        d = rng.uniform(NEIGHBOUR_UNITS, NEIGHBOUR_UNITS * 1.6) * u
        a = rng.uniform(0, 2 * np.pi)
        part = sample_part(pick(rng, ("0402", "0603", "0805", "sot23", "soic8")), rng)
        pen = Pen(img, (c[0] + d * np.cos(a), c[1] + d * np.sin(a)), ppm, 90.0 * rng.integers(2))
        solder = metal(rng)
        for side in (-1, 1):
            pen.box(side * part.length * 0.45, 0, part.length * 0.3, part.width * 1.1, solder)
        part.above(pen)


def _tilted(pen: Pen, part: Part, tilt: float) -> tuple[float, float]:
    """The part pivoting on its bottom edge at x = -L/2 (its far end lifted `tilt` degrees):
    the top face, shortened, then the lifted end's face. Returns the visible span along x."""
    length, width, thick = part.body
    rad = np.deg2rad(tilt)
    cos, sin = float(np.cos(rad)), float(np.sin(rad))
    x0 = -length / 2
    top_lo, top_hi = x0 - thick * sin, x0 - thick * sin + length * cos
    if cos * length * pen.s > 0.5:
        part.above(pen.at((top_lo + top_hi) / 2, 0, squash=cos))
    if sin * thick * pen.s > 0.3:
        end = shade(part.faces[1], 0.8 + 0.25 * sin)
        x, along = top_hi + thick * sin / 2, thick * sin
        rim = 0.12 * min(along, width)  # the cap's rounded edge, in shadow
        if part.name == "melf":
            pen.rounded(x, 0, along, width, width / 2, shade(end, 0.55))
            pen.rounded(x, 0, along - 2 * rim, width - 2 * rim, width / 2 - rim, end)
        else:
            pen.box(x, 0, along, width, shade(end, 0.55))
            pen.box(x, 0, along - 2 * rim, width - 2 * rim, end)
    return top_lo, x0 + length * cos


def tombstone(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation, shot: Shot
) -> list[Question]:
    """A two-terminal part of `var.packages` on its pads (shapes of `var.pads`) on a board of
    `var.boards`: standing or lifted past 60 degrees (YES), or lying flat (NO)."""
    names = [p for p in var.packages if p in TWO_TERMINAL or p == CLASSIC] or [CLASSIC]
    name = pick(rng, names)
    if name == CLASSIC:
        questions = classic_tombstone(img, rng, u, yes, var)
        bx, by, cx, cy = questions[0]["points"]
        shot.mark("part", (bx, by))
        shot.mark("pads", (cx, cy))
        shot.facts["tilt"] = 90.0 if yes else 0.0
        return questions
    part = sample_part(name, rng, two_terminal=True)
    length, width, _ = part.body
    units_per_mm = scale(rng, DOWN_CAMERA_FOV, length, CHIP_UNITS)
    ppm = units_per_mm * u
    gap = length * rng.uniform(0.35, 0.55)
    pad_l = length * rng.uniform(0.35, 0.55) + rng.uniform(0.05, 0.3)
    pad_w = width * rng.uniform(1.05, 1.35)
    most = FOOTPRINT_UNITS / units_per_mm  # pads end to end, mm
    pad_l = min(pad_l, (most - gap) / 2)
    centres = (-(gap + pad_l) / 2, (gap + pad_l) / 2)

    if pick(rng, var.boards) == CLASSIC:
        _board(img, rng, u)
    else:
        board(img, rng, ppm)
        _neighbours(img, rng, (img.shape[1] / 2, img.shape[0] / 2), ppm, u)
    c = _crosshair_centre(img, rng, u, var)
    axis = 90.0 * int(rng.integers(2)) + rng.uniform(-2, 2)
    if rng.random() < 0.2:
        axis = rng.uniform(0, 180)
    pen = Pen(img, c, ppm, axis)
    shape = pick(rng, var.pads)
    half_l, half_w = gap / 2 + pad_l, pad_w / 2
    if shape != CLASSIC and rng.random() < 0.7:  # silkscreen, sometimes a courtyard
        silk = jitter(rng, _SILK[int(rng.integers(len(_SILK)))], 10)
        margin, line = rng.uniform(0.15, 0.4), rng.uniform(0.1, 0.2)
        _outline(pen, half_l + margin, half_w + margin, line, silk, rng.random() < 0.4)
        if rng.random() < 0.3:
            grow = margin + rng.uniform(0.25, 0.5)
            _outline(pen, half_l + grow, half_w + grow, line * 0.5, shade(silk, 0.8), False)
        tall = rng.uniform(0.5, 1.0)  # mm: a designator's height
        if rng.random() < 0.5 and ppm * tall / 7 >= 0.6:  # a designator beside it
            text = pick(rng, ("R", "C", "D", "L")) + str(int(rng.integers(1, 300)))
            where = pen.px([(0, half_w + margin + tall)])[0, 0]
            draw_text(img, text, (where[0], where[1]), tall * ppm * len(text) * 6 / 7, silk)
    if shape == CLASSIC:
        pad_color, solder = _color(rng, (175, 175, 180), (235, 235, 240)), "bare"
    else:
        pad_color = jitter(rng, _FINISHES[int(rng.integers(len(_FINISHES)))], 12)
        solder = pick(rng, ("bare", "paste", "fillet"))
    tin, paste = metal(rng, 175, 240), _color(rng, (135, 135, 135), (180, 180, 185))
    for x in centres:
        _pad(pen, x, pad_l, pad_w, shape, pad_color)
        if solder == "paste":
            _pad(pen, x, pad_l * 0.85, pad_w * 0.85, shape, paste)
        elif solder == "fillet":
            _pad(pen, x, pad_l * 0.95, pad_w * 0.95, shape, tin)

    tilt = rng.uniform(*var.standing_tilt) if yes else rng.uniform(*var.flat_tilt)
    end = int(rng.integers(2))  # the end it stands on (or the end that stays down)
    slide = (rng.uniform(-0.1, 0.1) * length, rng.uniform(-0.2, 0.2) * width)
    yaw = rng.uniform(-8, 8) if not yes else rng.uniform(-4, 4)
    body = pen.at(*slide, yaw + 180.0 * end)
    height = max(part.body[2], length * np.sin(np.deg2rad(tilt)))
    if rng.random() < 0.6:  # an oblique light's shadow, longer the higher the part stands
        reach = height * rng.uniform(0.2, 0.6) * np.exp(1j * rng.uniform(0, 2 * np.pi))
        lo, hi = -length / 2 - part.body[2], -length / 2 + length * np.cos(np.deg2rad(tilt))
        box = np.array([(lo, -width / 2), (hi, -width / 2), (hi, width / 2), (lo, width / 2)])
        corners = body.px(np.concatenate([box, box + np.array([reach.real, reach.imag])]))[0]
        hull = cv2.convexHull(np.round(corners * 16).astype(np.int32))
        layer = img.copy()
        cv2.fillPoly(layer, [hull], (0, 0, 0), cv2.LINE_AA, 4)
        dark = rng.uniform(0.3, 0.6)
        cv2.addWeighted(layer, dark, img, 1.0 - dark, 0, dst=img)
    if solder == "fillet":  # the meniscus on each wetted end: bright toward the toe
        wet = (centres[end],) if yes else centres
        for x in wet:
            _pad(pen, x, pad_l * 0.7, pad_w * 0.9, "rect", shade(tin, 1.1))
    span = _tilted(body, part, tilt)
    mid = body.px([((span[0] + span[1]) / 2, 0)])[0, 0]
    shot.mark("part", tuple(mid))
    shot.mark("pads", tuple(c))
    corners = [(-half_l, -half_w), (half_l, -half_w), (half_l, half_w), (-half_l, half_w)]
    shot.mark("footprint", *[tuple(p) for p in pen.px(corners)[0]])
    shot.facts.update(tilt=float(tilt), package=name, length_units=length * units_per_mm)
    points = [float(v) for v in (*mid, *c)]
    return [{**_q("tombstone", yes), "points": points}]
