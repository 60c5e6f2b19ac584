"""The feeder camera's world: carrier tapes at their real sizes (EIA-481: 8-24 mm wide, 1.5 mm
sprocket holes at 4 mm pitch 1.75 mm from the edge, pockets at 2-16 mm pitch), paper tape with
punched pockets, black and clear embossed tape with or without floor holes, cover tape peeled
back, the feeder's window, and parts of any package in the pockets.

The label is the pick pocket's: the pocket nearest the frame's centre, drawn within 0.2 pitch
of it (the documented rule allows 0.25), holds a part (NO) or not (YES); every other pocket is
filled at random from the same reel.
"""

from __future__ import annotations

import cv2
import numpy as np

from pnp_vision.devtools.synthetic_camera import Shot
from pnp_vision.devtools.synthetic_packages import sample_part
from pnp_vision.devtools.synthetic_pen import Color, Pen, jitter, metal, pick, scale, shade
from pnp_vision.devtools.synthetic_scenes import Question, Variation, _fill, _q
from pnp_vision.devtools.synthetic_scenes import feeder_pocket as classic_feeder
from pnp_vision.devtools.synthetic_variation import CHIPS, CLASSIC, PACKAGES

FEEDER_CAMERA_FOV = (4.0, 40.0)  # mm across a feeder camera's shorter side
PART_UNITS = (16.0, 80.0)  # the part's longest side in units: judgeable in the view
POCKET_UNITS = 100.0  # the pocket's diagonal at most: inside the view at any angle
PICK_SLACK = 0.2  # the pick pocket lies within this share of a pitch of the frame's centre
SPROCKET_PITCH, SPROCKET_D, SPROCKET_EDGE = 4.0, 1.5, 1.75
# tape width -> distance from the sprocket line to the pockets' centre line, the widest pocket
TAPE_WIDTHS = {8: (3.5, 4.4), 12: (5.5, 8.4), 16: (7.5, 12.4), 24: (11.5, 20.4)}
POCKET_PITCHES = (2.0, 4.0, 8.0, 12.0, 16.0, 20.0, 24.0)
PAPER_PARTS = (*CHIPS, "led")  # thin enough for punched paper tape


def _tape(rng: np.random.Generator, kind: str, lane: Color) -> tuple[Color, Color, Color, Color]:
    """(tape, pocket floor, pocket rim, hole) colours of a tape over a lane of colour `lane`."""
    if kind == "paper":
        paper = jitter(rng, pick(rng, ((215, 228, 235), (200, 220, 232), (140, 175, 205))), 10)
        bottom = shade(paper, rng.uniform(0.75, 0.92)) if rng.random() < 0.7 else shade(lane, 1.1)
        return paper, bottom, shade(paper, 0.6), shade(lane, 0.7)
    if kind == "black":
        black = jitter(rng, (34, 34, 36), 8)
        return black, shade(black, 0.7), shade(black, 1.9), shade(lane, 0.6)
    seen = np.asarray(lane) * rng.uniform(0.85, 1.0) + rng.uniform(10, 35)  # clear: the lane
    clear = jitter(rng, seen, 4)
    return clear, shade(clear, 0.92), shade(clear, 1.6), shade(lane, 0.55)


def feeder_pocket(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation, shot: Shot
) -> list[Question]:
    """A tape of `var.tapes` holding parts of `var.packages`; the pick pocket is empty (YES)
    or holds a part (NO)."""
    kind = pick(rng, var.tapes)
    if kind == CLASSIC:
        shot.facts["classic"] = True
        return classic_feeder(img, rng, u, yes, var)
    names = [p for p in var.packages if p != CLASSIC] or list(PACKAGES[1:])
    name = pick(rng, names)
    if kind == "paper" and name not in PAPER_PARTS:  # paper tape carries thin parts only
        name = pick(rng, [p for p in names if p in PAPER_PARTS] or ["0402", "0603", "0805"])
    part = sample_part(name, rng)
    clear = rng.uniform(0.05, 0.25) + 0.04 * max(part.length, part.width)
    along, across = part.width + 2 * clear, part.length + 2 * clear  # long side across the tape
    turn = 90.0
    if across > TAPE_WIDTHS[24][1]:
        along, across, turn = across, along, 0.0
    width = next((t for t, (_, most) in TAPE_WIDTHS.items() if across <= most), 24)
    offset = TAPE_WIDTHS[width][0]
    small = kind == "paper" and along <= 1.3
    pitch = next((p for p in POCKET_PITCHES if p >= along + 0.6 and (p > 2 or small)), 24.0)
    units_per_mm = scale(rng, FEEDER_CAMERA_FOV, max(part.length, part.width), PART_UNITS)
    units_per_mm = min(units_per_mm, POCKET_UNITS / np.hypot(along, across))
    ppm = units_per_mm * u

    h, w = img.shape[:2]
    lane = jitter(rng, pick(rng, ((60, 60, 62), (28, 28, 30), (165, 168, 172))), 15)
    _fill(img, shade(lane, rng.uniform(0.7, 1.2)))  # the feeder around the tape
    reach = (var.shift[1] if var.shift else 20.0) * u
    r = min(PICK_SLACK * pitch * ppm, reach) * np.sqrt(rng.random())
    a = rng.uniform(0, 2 * np.pi)
    pick_at = (w / 2 + r * np.cos(a), h / 2 + r * np.sin(a))
    angle = 90.0 * int(rng.integers(4)) + rng.uniform(-3, 3)
    if rng.random() < 0.2:
        angle = rng.uniform(0, 360)
    pen = Pen(img, pick_at, ppm, angle)
    span = np.hypot(w, h) / ppm  # mm to cover, from the pick pocket either way
    holes_y = -offset
    edge = holes_y - SPROCKET_EDGE
    pen.box(0, edge + width / 2, 2 * span, width + rng.uniform(0.4, 2.0), lane)  # the slot
    tape, floor, rim, hole = _tape(rng, kind, lane)
    pen.box(0, edge + width / 2, 2 * span, width, tape)
    xs = np.arange(-np.ceil(span / SPROCKET_PITCH), np.ceil(span / SPROCKET_PITCH) + 1)
    holes = np.stack([xs * SPROCKET_PITCH + 2.0, np.full_like(xs, holes_y)], 1)
    if kind == "clear":
        pen.circles(holes, SPROCKET_D / 2 + 0.08, rim)
    pen.circles(holes, SPROCKET_D / 2, hole)

    k = np.arange(-np.ceil(span / pitch), np.ceil(span / pitch) + 1)
    pockets = np.stack([k * pitch, np.zeros_like(k)], 1)
    pen.boxes(pockets, (along + 0.3, across + 0.3), rim)
    pen.boxes(pockets, (along, across), floor)
    if kind == "paper":  # the punched edge's shadow along one side
        edge_shadow = pockets + np.array([0, -across * 0.46])
        pen.boxes(edge_shadow, (along, across * 0.08), shade(floor, 0.7))
    if kind != "paper" and rng.random() < 0.6 and min(along, across) > 1.0:  # floor holes
        d = min(rng.uniform(0.5, 1.5), 0.5 * min(along, across))
        pen.circles(pockets, d / 2, hole if rng.random() < 0.7 else shade(lane, 2.0))
    fill = rng.choice((0.0, 0.6, 0.9, 1.0), p=(0.1, 0.4, 0.3, 0.2))
    filled = rng.random(len(k)) < fill
    filled[k == 0] = not yes
    slips = rng.uniform(-clear, clear, (len(k), 2)) * 0.8
    turns = turn + rng.uniform(-4, 4, len(k))
    if filled.any():  # one pen at every filled pocket: the reel drawn in one go
        seats = pen.px(pockets[filled] + slips[filled])[0]
        part.above(Pen(img, seats, ppm, angle + turns[filled]))
    if rng.random() < 0.7:  # the cover tape, peeled back before the pick position
        cover = min(width - 2.7, across + 1.0)
        sign = 1 if rng.random() < 0.5 else -1
        start = sign * rng.uniform(along / 2 + 0.3, 3 * pitch)
        far = sign * 2 * span
        layer = img.copy()
        film = Pen(layer, pick_at, ppm, angle)
        film.box((start + far) / 2, 0, abs(far - start), cover, jitter(rng, (235, 235, 235), 15))
        seal = shade(tape, rng.uniform(0.7, 1.3))
        for y in (-cover / 2 + 0.4, cover / 2 - 0.4):
            film.box((start + far) / 2, y, abs(far - start), 0.25, seal)
        mix = rng.uniform(0.08, 0.25)
        cv2.addWeighted(img, 1 - mix, layer, mix, 0, dst=img)
        pen.line((start, -cover / 2), (start, cover / 2), 0.05, (240, 240, 240))
    if rng.random() < 0.4:  # the feeder's cover plate, with a window over the pick pocket
        plate = metal(rng, 120, 200) if rng.random() < 0.6 else jitter(rng, (32, 32, 34), 6)
        window = max(rng.uniform(0.7, 2.5) * pitch, along / 2 + 0.5)
        for sign in (-1, 1):
            pen.box(sign * (window + span), edge + width / 2, 2 * span, width + 4, plate)
            pen.line((sign * window, edge - 2), (sign * window, edge + width + 2), 0.08,
                     shade(plate, 0.5))  # fmt: skip
    shot.mark("pocket", pick_at)
    shot.mark("pockets", *[tuple(p) for p in pen.px(pockets)[0]])
    shot.facts.update(
        package=name, tape=kind, pitch_units=float(pitch * units_per_mm), filled=filled.tolist(),
        pick=int(np.flatnonzero(k == 0)[0]),
    )  # fmt: skip
    return [_q("feeder_pocket_empty", yes)]
