"""The part-marking and polarity scene (down-looking camera over a marked part).

Kept apart from `synthetic_scenes` so the marking and polarity looks can grow on their own; it
uses the same drawing helpers and units (1/224 of the frame's shorter side).

Two worlds (`Variation.markings`): "classic", the original frames (a square IC, a random
string in the dot font, a dot in one corner; byte-identical to what the generator always
drew), and "world": parts as real reels carry them (`marking_parts`, `marking_codes`), turned
any quarter and a little, the marking as small as the view can still read (docs/evaluation.md,
"Part markings and polarity").
"""

from __future__ import annotations

import functools
import string
from dataclasses import replace

import cv2
import numpy as np

from pnp_vision.devtools.glyphs import draw_text
from pnp_vision.devtools.marking_codes import negative
from pnp_vision.devtools.marking_parts import (
    FAMILIES,
    Part,
    draw_shapes,
    pose_matrix,
    sample_part,
    to_frame,
)
from pnp_vision.devtools.marking_text import LINE_PITCH, Face, block_size, draw_block
from pnp_vision.devtools.marking_view import ROI, VIEW, Sight
from pnp_vision.devtools.synthetic_scenes import (
    DEFAULT,
    Question,
    Variation,
    _board,
    _box,
    _circle,
    _color,
    _crosshair_centre,
    _q,
)
from pnp_vision.inspect.views import view_box

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


def random_marking(rng: np.random.Generator) -> str:
    """A marking that matches the template pattern ^[A-Z0-9][A-Z0-9-]{0,15}$ (4-7 characters)."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(rng.choice(list(alphabet), size=int(rng.integers(4, 8))))


def chip(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation = DEFAULT
) -> list[Question]:
    """Down-looking camera over an IC: a printed marking and a polarity dot in one corner
    (with `var.markings == "world"`: `world_chip`)."""
    if var.markings == "world":
        return world_chip(img, rng, u, var)
    _board(img, rng, u)
    cx, cy = _crosshair_centre(img, rng, u, var)
    w, h = rng.uniform(110, 150) * u, rng.uniform(80, 115) * u
    x0, y0 = cx - w / 2, cy - h / 2
    lead = _color(rng, (170, 170, 170), (230, 230, 230))
    n = int(rng.integers(4, 9))
    for i in range(n):  # gull-wing leads on the long sides
        x = x0 + (i + 0.5) * w / n
        for y in (y0 - 6 * u, y0 + h + 6 * u):
            _box(img, (x, y), w / n * 0.45, 14 * u, 0, lead)
    _box(img, (cx, cy), w, h, 0, _color(rng, (15, 15, 15), (55, 55, 55)))
    ink = _color(rng, (150, 150, 150), (235, 235, 235))
    marking = random_marking(rng)
    draw_text(img, marking, (cx, cy), w * 0.8, ink)
    corner = CORNERS[rng.integers(4)]
    inset, r = rng.uniform(13, 18) * u, rng.uniform(6.5, 9) * u
    dx = x0 + inset if corner.endswith("left") else x0 + w - inset
    dy = y0 + inset if corner.startswith("top") else y0 + h - inset
    _circle(img, (dx, dy), r, ink)
    other = CORNERS[(CORNERS.index(corner) + rng.integers(1, 4)) % 4]
    wrong = random_marking(rng)
    while wrong == marking:
        wrong = random_marking(rng)
    return [
        _q("part_marking", True, marking=marking),
        _q("part_marking", False, marking=wrong),
        _q("polarity_mark", True, corner=corner),
        _q("polarity_mark", False, corner=other),
    ]


# -- the world: real packages, markings and polarity cues (Variation(markings="world")) --------

MIN_MARKING_SIDE = 240  # a frame's shorter side below this cannot hold a legible marking there
# The smallest cap height (view px) each face is drawn at: bench/marking_legibility.py's limit
# (its observer tells every look-alike pair apart through render's worst blur, JPEG q40 and
# a laser-etched marking's lowest contrast), so no frame's answer is a matter of taste.
MIN_CAP = {"regular": 14.0, "condensed": 18.0, "dot": 20.0}
SIZE_SPREAD = 1.8  # caps are drawn log-uniformly from the limit to this times it
SMALL_TURN = 12.0  # degrees a part sits off its quarter turn, at most
UPSCALE_CREDIT = 1.4  # a camera below the view counts for at most 320x240's 1.4x upscale
LENS_BLUR = 1.2  # units: render's softest lens (Gaussian sigma), what MIN_CAP was measured at
CLEARANCE = 0.25  # a corner cue clears both centre lines by this share of the body's half width
# Where a part with a corner cue cannot be marked legibly, this share of them is drawn anyway
# for polarity_mark alone (without it 3.5% of world chip frames asked it). A cue is asked about
# only where it shows (`marking_view`: about half of them), so 0.15 became 0.3: 28% of WORLD's
# chip frames ask polarity_mark (26% before the rule, half of them about unseen cues) and 75%
# part_marking (77%)
ILLEGIBLE_SHARE = 0.3


def face_name(face: Face) -> str:
    return "dot" if face.kind == "dot" else ("condensed" if face.aspect < 0.8 else "regular")


def quadrant(at: tuple[float, float], reach: float, angle: float) -> tuple[str, float]:
    """The corner (image axes) of a cue at `at` (mm from the body's centre, part frame) on a
    part turned `angle` degrees, and how far (mm) its reach stays from both centre lines."""
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    x, y = c * at[0] - s * at[1], s * at[0] + c * at[1]
    corner = f"{'top' if y < 0 else 'bottom'}_{'left' if x < 0 else 'right'}"
    return corner, min(abs(x), abs(y)) - reach


def _pick_face(rng: np.random.Generator, part: Part) -> Face:
    """One of the faces the part's marking process writes: condensed mostly for long part
    numbers (as marking machines squeeze them), the dot matrix now and then."""
    faces = {face_name(f): f for f in part.faces}
    long = max(len(line) for line in part.lines) >= 9
    weights = {"regular": 1.0, "condensed": 2.5 if long else 0.25, "dot": 0.35}
    names = sorted(faces)
    p = np.array([weights[n] for n in names])
    face = faces[names[int(rng.choice(len(names), p=p / p.sum()))]]
    if face.kind == "dot":
        return replace(face, weight=float(rng.uniform(0.85, 1.0)))
    return replace(face, weight=float(rng.uniform(0.12, 0.17)), slashed_zero=rng.random() < 0.25)


def _extent(part: Part, scale: float, angle: float) -> tuple[float, float]:
    """Half the width and height (frame px) of the turned part with its leads."""
    c, s = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
    ex, ey = part.extent
    return (c * ex + s * ey) * scale, (s * ex + c * ey) * scale


def _fits(part: Part, scale: float, angle: float, box: tuple[float, float]) -> bool:
    """Whether the turned part fits the view's box with 2% to spare on each side."""
    ex, ey = _extent(part, scale, angle)
    return 2 * ex <= box[0] * 0.96 and 2 * ey <= box[1] * 0.96


def _largest_cap(part: Part, face: Face, box: tuple[float, ...]) -> float:
    """The tallest capitals (mm) that fit the part's lines in `box` (and its maker's size)."""
    rows = 1 + LINE_PITCH * (len(part.lines) - 1)
    widest = max(face.advance(line) for line in part.lines)
    return min(box[2] / widest, box[3] / rows, part.max_cap)


def blur_factor(var: Variation) -> float:
    """How much larger than MIN_CAP a marking must be for `var`'s worst blur: the world
    camera's defocus and motion streak (a streak of L has sigma L / sqrt(12)) on top of the
    lens; legibility under blur goes with cap height / sigma."""
    sigma = np.sqrt(LENS_BLUR**2 + var.defocus[1] ** 2 + var.motion_blur[1] ** 2 / 12)
    return float(sigma / LENS_BLUR)


def _layout(
    rng: np.random.Generator, img: np.ndarray, families: tuple[str, ...], blur: float = 1.0
):
    """A part, its face, cap height (mm), scale (px per mm) and turn such that its marking is
    at least the face's legibility limit (times `blur`) in the view and the whole part fits
    in the view."""
    h, w = img.shape[:2]
    left, top, right, bottom = view_box((w, h), ROI, VIEW)
    per_view = VIEW[0] / (right - left)  # view pixels per frame pixel
    box = (right - left, bottom - top)
    for attempt in range(80):
        part = sample_part(rng, families)
        face = _pick_face(rng, part)
        if attempt >= 40:  # a blurred frame: the face and line count that can stay legible
            regular = [f for f in part.faces if face_name(f) == "regular"]
            face = regular[0] if regular else face
            part.lines = part.lines[:1]
        boxes = [part.text_box] if part.alt_box is None else [part.text_box, part.alt_box]
        part.text_box = max(boxes, key=lambda box: _largest_cap(part, face, box))
        cap_mm = _largest_cap(part, face, part.text_box) * rng.uniform(0.8, 1.0)
        least = blur * MIN_CAP[face_name(face)] / min(per_view, UPSCALE_CREDIT)  # frame px
        want = least * np.exp(rng.uniform(0, np.log(SIZE_SPREAD)))
        angle = 90.0 * int(rng.integers(4)) + (
            rng.uniform(-SMALL_TURN, SMALL_TURN) if rng.random() < 0.7 else 0.0
        )
        angle = _clear_cue(part, angle)
        for cap_px in (want, least):
            if _fits(part, cap_px / cap_mm, angle, box):
                return part, face, cap_mm, cap_px / cap_mm, angle, (left, top, right, bottom)
        if len(part.lines) > 1 and rng.random() < 0.5:  # a one-line marking of the same part
            part.lines = part.lines[:1]
            cap_mm = _largest_cap(part, face, part.text_box)
            if _fits(part, least / cap_mm, angle, box):
                return part, face, cap_mm, least / cap_mm, angle, (left, top, right, bottom)
        if part.corner_cue is not None and rng.random() < ILLEGIBLE_SHARE:
            # its marking cannot be legible in this view, its corner cue can: drawn to fill
            # 60-90% of the view and asked about its cue only (without this, parts whose
            # part numbers are long, most ICs and so most corner cues, were never drawn)
            ex, ey = _extent(part, 1.0, angle)
            part.illegible = True
            scale = rng.uniform(0.6, 0.9) * min(box[0] / (2 * ex), box[1] / (2 * ey))
            return part, face, cap_mm, scale, angle, (left, top, right, bottom)
    raise RuntimeError("no marked part fits this frame")  # a frame under ~100 px


def _clear_cue(part: Part, angle: float) -> float:
    """`angle`, moved toward its quarter turn until the corner cue clears the centre lines."""
    cue = part.corner_cue
    if cue is None:
        return angle
    quarter = 90.0 * round(angle / 90.0)
    need = CLEARANCE * min(part.body)
    while quadrant(cue.at, cue.reach, angle)[1] < need and abs(angle - quarter) > 0.1:
        angle = quarter + (angle - quarter) / 2
    return angle if quadrant(cue.at, cue.reach, angle)[1] >= need else quarter


@functools.lru_cache(maxsize=1)
def _blob() -> np.ndarray:
    ys, xs = np.mgrid[-1:1:17j, -1:1:17j]
    return np.exp(-3 * (xs**2 + ys**2)).astype(np.float32)


def _glare_cap(ink: tuple[int, ...], surface: tuple[int, ...]) -> float:
    """The brightest glare (grey levels) that keeps 60% of the marking's contrast even where
    render's lighting is brightest (x1.85, clipping at 255)."""
    t, b = float(np.mean(ink)), float(np.mean(surface))
    for g in range(120, -1, -5):
        lit = abs(min(1.85 * (t + g), 255) - min(1.85 * (b + g), 255))
        if lit >= 0.6 * min(abs(t - b) * 1.85, 255 - 1.85 * min(t, b)):
            return float(g)
    return 0.0


def _glare(img: np.ndarray, rng: np.random.Generator, at: np.ndarray, size: float, peak: float):
    """A soft ring-light reflection: a Gaussian blob added to the frame around `at`."""
    h, w = img.shape[:2]
    gw, gh = (max(3, int(size * f)) for f in rng.uniform(0.5, 1.2, size=2))
    x0, y0 = int(at[0] - gw / 2), int(at[1] - gh / 2)
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + gw), min(h, y0 + gh)
    if xb <= xa or yb <= ya:
        return
    blob = cv2.resize(_blob(), (gw, gh))[ya - y0 : yb - y0, xa - x0 : xb - x0]
    roi = img[ya:yb, xa:xb].astype(np.float32) + (peak * blob)[..., None]
    img[ya:yb, xa:xb] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)


def _neighbours(img, rng, part_m: np.ndarray, angle: float, keep_out: float, scale: float):
    """Unmarked chip capacitors around the part, as on a real board."""
    h, w = img.shape[:2]
    centre = part_m[:, 2]
    for _ in range(int(rng.integers(0, 4))):
        at = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        size = float(rng.choice([1.0, 1.6, 2.0]))
        if np.hypot(*(at - centre)) < keep_out + size * scale:
            continue
        body = _color(rng, (60, 100, 130), (140, 175, 205))
        metal = _color(rng, (160, 160, 160), (225, 225, 225))
        turn = angle + 90.0 * int(rng.integers(2))
        _box(img, tuple(at), size * scale, size * 0.5 * scale, turn, metal)
        _box(img, tuple(at), size * 0.6 * scale, size * 0.5 * scale, turn, body)


def world_chip(
    img: np.ndarray, rng: np.random.Generator, u: float, var: Variation = DEFAULT
) -> list[Question]:
    """Down-looking camera over one marked part of a real package family, turned any quarter
    and a little, its marking near the smallest legible size of the view. Questions:
    part_marking (line 1 and one near-miss negative; both carry the drawn `lines`),
    polarity_mark (only parts with a corner cue, and only where it shows in the final frame:
    each carries its `sight` for `marking_view.ask_where_seen`; `points`: the cue and the body
    centre)."""
    _board(img, rng, u)
    part, face, cap, scale, angle, (left, top, right, bottom) = _layout(
        rng, img, tuple(FAMILIES), blur_factor(var)
    )
    ex, ey = _extent(part, scale, angle)
    cx, cy = _crosshair_centre(img, rng, u, var)
    mx, my = 0.02 * (right - left), 0.02 * (bottom - top)  # the slack `_fits` left
    cx = float(np.clip(cx, left + ex + mx, right - ex - mx))
    cy = float(np.clip(cy, top + ey + my, bottom - ey - my))
    m = pose_matrix((cx, cy), scale, angle)
    _neighbours(img, rng, m, angle, np.hypot(ex, ey), scale)
    cue = part.corner_cue  # a chamfer black on black, a faint dimple: asked where it shows
    draw_shapes(img, part.shapes, m)
    tx, ty = part.text_box[:2]
    text_m = m @ np.vstack([pose_matrix((tx, ty), 1.0, part.text_turn), [0, 0, 1]])
    ink = tuple(int(np.clip(v + rng.integers(-6, 7), 0, 255)) for v in part.ink)
    draw_block(img, part.lines, face, cap, text_m, [ink] * len(part.lines))
    if rng.random() < 0.45:
        peak = _glare_cap(part.ink, part.surface) * rng.uniform(0.4, 1.0)
        spot = to_frame(m, [rng.uniform(-1, 1, 2) * part.body])[0]
        _glare(img, rng, spot, 2 * max(part.body) * scale, peak)
    first = block_size(part.lines, face, cap)[1] / 2 - cap / 2
    line1 = [float(v) for v in to_frame(text_m, [(0.0, -first)])[0]]
    wrong, kind = negative(rng, part.lines)
    questions = [] if part.illegible else [
        {**_q("part_marking", yes, marking=text), "lines": list(part.lines),
         "points": [*line1, cx, cy], **extra}
        for yes, text, extra in ((True, part.lines[0], {}), (False, wrong, {"negative": kind}))
    ]  # fmt: skip
    if cue is not None:
        corner, _ = quadrant(cue.at, cue.reach, angle)
        other = CORNERS[(CORNERS.index(corner) + int(rng.integers(1, 4))) % 4]
        drawn = [float(v) for v in to_frame(m, [cue.at])[0]] + [cx, cy]
        sight = Sight(cue, m, part.body)  # asked only where it shows: `ask_where_seen`
        questions += [
            {**_q("polarity_mark", True, corner=corner), "points": drawn, "sight": sight},
            {**_q("polarity_mark", False, corner=other), "points": drawn, "sight": sight},
        ]
    return questions
