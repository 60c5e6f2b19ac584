"""The feeder camera: carrier tape seen from above at the pick position.

Tapes follow EIA-481 proportions in millimetres (8-16 mm wide, sprocket holes of 1.5 mm every
4 mm, 1.75 mm from the edge, pockets every 2-12 mm): punched paper, black, blue or clear
embossed plastic with or without a floor hole, cover tape over the pockets still to come, and
sometimes the feeder's shutter with its pick window. The pick pocket is the one whose centre
is nearest the frame's centre, within a quarter pitch of it (so no other pocket is within
three quarters of a pitch): YES when it holds nothing, NO when a part lies in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pnp_vision.devtools.second_look.canvas import (
    Canvas,
    Colour,
    Point,
    mix,
    rotate,
    rounded_rect_points,
    shade,
    smooth_noise,
    with_alpha,
)
from pnp_vision.devtools.second_look.parts import PACKAGES, PartDrawer, draw_top, part_look
from pnp_vision.devtools.second_look.shots import Ctx, Draft, pick, roi_half, uniform

PICK_WINDOW = 0.25  # the pick pocket's centre is within this many pitches of the frame centre

# (tape width mm, pocket pitch mm, pocket centre row from the sprocket row mm, parts)
FORMATS = [
    (8, 2.0, 3.5, ["R0402", "C0402", "R0201", "C0201"]),
    (
        8,
        4.0,
        3.5,
        [
            "R0603",
            "C0603",
            "R0805",
            "C0805",
            "C1206",
            "R1206",
            "SOT23",
            "LED0603",
            "TANT-A",
            "SOD123",
            "MICROMELF",
        ],
    ),
    (
        12,
        8.0,
        5.5,
        ["SOIC8", "SOT223", "QFN32", "TANT-B", "ELEC5", "XTAL3225", "LED-PLCC2", "IND4x4"],
    ),
    (16, 12.0, 7.5, ["SOIC16", "QFP32", "ELEC6", "BGA64"]),
]
PAPER_ONLY = {2.0}
TAPE_COLOURS: dict[str, Colour] = {
    "paper_white": (226, 222, 210),
    "paper_brown": (188, 156, 112),
    "black_embossed": (30, 30, 32),
    "clear_embossed": (190, 205, 215),
    "blue_embossed": (40, 70, 140),
}
FEEDER_METALS: list[Colour] = [(150, 152, 156), (60, 62, 66), (36, 38, 44), (96, 110, 140)]


@dataclass(frozen=True)
class TapeLook:
    kind: str
    width: float  # mm
    pitch: float  # mm
    row: float  # pocket row's distance from the sprocket row, mm
    parts: tuple[str, ...]
    angle: float  # tape direction in the scene, degrees
    sprockets_low: bool  # sprocket row on the -t side
    floor_hole: bool
    cover: bool
    shutter: bool
    feeder: Colour
    texture: float
    pitch_units: float


def tape_look(ctx: Ctx) -> TapeLook:
    r = ctx.look_rng
    kind = pick(r, ctx.style.tapes)
    paper = kind.startswith("paper")
    formats = (
        [f for f in FORMATS if f[0] == 8]
        if paper
        else [f for f in FORMATS if f[1] not in PAPER_ONLY]
    )
    width, pitch, row, parts = pick(r, formats)
    return TapeLook(
        kind=kind,
        width=float(width),
        pitch=pitch,
        row=row,
        parts=tuple(parts),
        angle=90.0 * int(r.integers(2)) + float(r.normal(0, 1.0)),
        sprockets_low=bool(r.random() < 0.5),
        floor_hole=bool(r.random() < 0.5) and not paper,
        cover=bool(r.random() < 0.7),
        shutter=bool(r.random() < 0.35),
        feeder=pick(r, FEEDER_METALS),
        texture=ctx.texture(),
        pitch_units=uniform(r, ctx.style.pitch_units),
    )


class TapeFrame:
    """Tape coordinates (s along the tape, t across it, mm) -> scene units."""

    def __init__(self, origin: Point, angle: float, upm: float) -> None:
        self.origin, self.angle, self.upm = origin, angle, upm

    def __call__(self, s: float, t: float) -> Point:
        q = rotate((s * self.upm, t * self.upm), self.angle)
        return (self.origin[0] + q[0], self.origin[1] + q[1])

    def poly(self, pts: list[Point], at: Point = (0.0, 0.0)) -> list[Point]:
        return [self(at[0] + s, at[1] + t) for s, t in pts]


def tape_pocket(ctx: Ctx) -> Draft:
    """A tape at the pick position: the pick pocket empty (YES) or holding a part (NO)."""
    tl = tape_look(ctx)
    rng = ctx.rng
    look_pkgs = [PACKAGES[n] for n in tl.parts]
    pkg = look_pkgs[int(ctx.look_rng.integers(len(look_pkgs)))]  # the reel: part of the look
    plook = part_look(ctx.look_rng, pkg, from_below=False)
    marking = reel_marking(rng, pkg)
    upm = tl.pitch_units / tl.pitch
    hx, hy = roi_half(ctx.size)
    # the pick pocket's centre: within a quarter pitch of the frame centre, inside the ROI
    lim = min(PICK_WINDOW * 0.9 * tl.pitch_units, 0.5 * hx, 0.5 * hy)
    pick_at = (float(rng.uniform(-lim, lim)), float(rng.uniform(-lim, lim)))
    side = -1.0 if tl.sprockets_low else 1.0  # the pocket row is at t = 0
    t_sprocket = side * tl.row
    edge_near = t_sprocket + side * 1.75  # the tape edge beside the sprocket holes
    edge_far = edge_near - side * tl.width
    t0, t1 = min(edge_near, edge_far), max(edge_near, edge_far)
    frame = TapeFrame(pick_at, tl.angle, upm)
    pocket = _pocket_size(pkg, tl)
    cv = ctx.canvas(tl.feeder)
    hxf, hyf = cv.half_extent
    span = (math.hypot(hxf, hyf) / upm) + tl.pitch
    _feeder_body(cv, tl, frame, t0, t1, span, rng)
    _tape_body(cv, tl, frame, t0, t1, span, rng)
    phase = float(rng.uniform(0, 4.0))
    s = -span - phase
    while s < span:
        _sprocket(cv, tl, frame, (s, t_sprocket))
        s += 4.0
    upstream = 1.0 if rng.random() < 0.5 else -1.0
    random_fill = rng.random() < 0.25
    pockets, occupied = [], []
    k_max = int(span / tl.pitch) + 1
    for k in range(-k_max, k_max + 1):
        centre = (k * tl.pitch, 0.0)
        _pocket(cv, tl, frame, centre, pocket)
        if k == 0:
            full = not ctx.want_yes
        elif random_fill:
            full = bool(rng.random() < 0.5)
        else:
            full = (k * upstream > 0) != (rng.random() < 0.1)
        pockets.append(frame(*centre))
        occupied.append(full)
        if full:
            _part_in_pocket(cv, tl, frame, centre, pocket, pkg, plook, upm, rng, marking)
    if tl.cover:
        _cover_tape(cv, tl, frame, upstream, span, pocket, rng)
    if tl.shutter:
        _shutter(cv, tl, frame, pocket, span)
    return Draft(
        "tape_pocket",
        cv,
        [("feeder_pocket_empty", {}, "YES" if ctx.want_yes else "NO")],
        {
            "pick": pick_at,
            "pitch_units": tl.pitch_units,
            "pockets": pockets,
            "occupied": occupied,
            "pocket_units": (pocket[0] * upm, pocket[1] * upm),
            "angle": tl.angle,
            "tape": tl.kind,
            "package": pkg.name,
            "roi_half": (hx, hy),
            "look": {"tape": tl, "part": plook},
        },
    )


def _pocket_size(pkg, tl: TapeLook) -> tuple[float, float]:
    """Pocket (along s, across t) in mm: the part's outline plus clearance, within the pitch."""
    along = min(pkg.span_y + 0.3, tl.pitch * 0.72)
    across = min(pkg.span_x + 0.3, tl.width - 3.6)
    return along, across


def _feeder_body(
    cv: Canvas,
    tl: TapeLook,
    f: TapeFrame,
    t0: float,
    t1: float,
    span: float,
    rng: np.random.Generator,
) -> None:
    """The feeder under and beside the tape: machined metal with guide rails."""
    w, h = cv.work_size
    gx, gy = cv.scene_grid()
    a = math.radians(tl.angle)
    along = gx * math.cos(a) + gy * math.sin(a)
    brushed = smooth_noise(rng, (h, w), 3 * cv.k) * 0.5 + np.sin(along * 0.9) * 0.4
    cv.texture(brushed * 6 * tl.texture + smooth_noise(rng, (h, w), 50 * cv.k) * 8)
    rail = shade(tl.feeder, 1.25 if sum(tl.feeder) < 300 else 0.8)
    for lo, hi in ((t0 - 2.2, t0 - 0.15), (t1 + 0.15, t1 + 2.2)):
        cv.polygon(f.poly([(-span, lo), (span, lo), (span, hi), (-span, hi)]), fill=rail)
        cv.line([f(-span, (lo + hi) / 2), f(span, (lo + hi) / 2)], shade(rail, 1.15), 0.4)


def _tape_body(
    cv: Canvas,
    tl: TapeLook,
    f: TapeFrame,
    t0: float,
    t1: float,
    span: float,
    rng: np.random.Generator,
) -> None:
    colour = TAPE_COLOURS[tl.kind]
    outline = f.poly([(-span, t0), (span, t0), (span, t1), (-span, t1)])
    if tl.kind == "clear_embossed":
        cv.polygon(outline, fill=with_alpha(colour, 0.22))
        for t in (t0, t1):
            cv.line([f(-span, t), f(span, t)], with_alpha((235, 240, 245), 0.7), 0.25)
        return
    cv.polygon(outline, fill=colour)
    if tl.kind.startswith("paper"):  # fibres: fine noise along the tape
        for _ in range(int(140 * tl.texture)):
            s = float(rng.uniform(-span, span))
            t = float(rng.uniform(t0, t1))
            ln = float(rng.uniform(0.1, 0.5))
            g = shade(colour, float(rng.uniform(0.85, 1.08)))
            cv.line([f(s, t), f(s + ln, t + float(rng.normal(0, 0.05)))], g, 0.05)
    else:  # embossed plastic: a soft sheen along the tape
        mid = (t0 + t1) / 2
        cv.polygon(
            f.poly([(-span, mid - 0.8), (span, mid - 0.8), (span, mid), (-span, mid)]),
            fill=with_alpha((255, 255, 255), 0.05),
        )


def _sprocket(cv: Canvas, tl: TapeLook, f: TapeFrame, at: Point) -> None:
    r = 0.75 * f.upm
    c = f(*at)
    if tl.kind == "clear_embossed":
        cv.circle(c, r, outline=(225, 232, 240), width=0.12 * f.upm)
        return
    cv.circle(c, r, fill=shade(tl.feeder, 0.6))
    cv.circle(c, r, outline=shade(TAPE_COLOURS[tl.kind], 0.7), width=0.08 * f.upm)


def _pocket(cv: Canvas, tl: TapeLook, f: TapeFrame, at: Point, size: tuple[float, float]) -> None:
    """One pocket, empty: a punched hole, or an embossed cavity with walls and floor."""
    along, across = size
    outer = f.poly(rounded_rect_points(along, across, 0.15), at)
    if tl.kind.startswith("paper"):
        floor = mix(TAPE_COLOURS[tl.kind], (70, 70, 74), 0.45)
        cv.polygon(outer, fill=floor)
        wall = [
            (-along / 2, -across / 2),
            (along / 2, -across / 2),
            (along / 2, -across / 2 + 0.22),
            (-along / 2, -across / 2 + 0.22),
        ]
        cv.polygon(f.poly(wall, at), fill=shade(floor, 0.7))
        return
    base = TAPE_COLOURS[tl.kind]
    if tl.kind == "clear_embossed":
        cv.polygon(outer, fill=with_alpha((20, 24, 30), 0.12))
        cv.polygon(outer, outline=with_alpha((240, 244, 250), 0.8), width=0.18)
        inner = f.poly(rounded_rect_points(along - 0.5, across - 0.5, 0.1), at)
        cv.polygon(inner, outline=with_alpha((200, 210, 220), 0.5), width=0.1)
    else:
        cv.polygon(outer, fill=shade(base, 1.5 if sum(base) < 200 else 1.15))
        inner = f.poly(rounded_rect_points(along - 0.45, across - 0.45, 0.1), at)
        cv.polygon(inner, fill=shade(base, 0.8))
        lit = [
            (-along / 2, -across / 2),
            (along / 2, -across / 2),
            (along / 2 - 0.22, -across / 2 + 0.22),
            (-along / 2 + 0.22, -across / 2 + 0.22),
        ]
        cv.polygon(f.poly(lit, at), fill=shade(base, 2.2 if sum(base) < 200 else 1.3))
    if tl.floor_hole:
        c = f(*at)
        hole = min(0.5 * min(along, across), 0.75) * f.upm
        cv.circle(c, hole, fill=shade(tl.feeder, 0.8))
        cv.circle(c, hole, outline=shade(base, 1.6), width=0.1 * f.upm)


def reel_marking(rng: np.random.Generator, pkg) -> list[str] | None:
    """What every part of the reel carries (one reel, one marking)."""
    if pkg.kind == "chip_r":
        return [pick(rng, ["103", "472", "1001", "4R7", "22R", "01C"])]
    if pkg.kind in ("soic", "qfp", "sot23", "qfn"):
        return [pick(rng, ["LM358", "A7W", "74HC14", "TL431", "1AM", "STM32"])]
    return None


def _part_in_pocket(
    cv: Canvas,
    tl: TapeLook,
    f: TapeFrame,
    at: Point,
    pocket,
    pkg,
    plook,
    upm: float,
    rng: np.random.Generator,
    marking: list[str] | None,
) -> None:
    """The tape's part lying in a pocket: across the tape, a little loose."""
    along, across = pocket
    play = (max(0.0, along - pkg.span_y) / 2, max(0.0, across - pkg.span_x) / 2)
    s = at[0] + float(rng.uniform(-1, 1)) * play[0] * 0.8
    t = at[1] + float(rng.uniform(-1, 1)) * play[1] * 0.8
    angle = tl.angle + 90.0 + (180.0 if rng.random() < 0.5 else 0.0) + float(rng.normal(0, 2))
    centre = f(s, t)
    shadow = [f(s + x, t + y) for x, y in rounded_rect_points(pkg.span_y, pkg.span_x, 0.1)]
    cv.shadow([[(p[0] + 0.4, p[1] + 0.6) for p in shadow]], blur=0.6, opacity=0.5)
    d = PartDrawer(cv, pkg, centre, angle - 90.0, upm, plook)
    draw_top(d, marking, {"style": "laser" if pkg.kind != "chip_r" else "ink"})


def _cover_tape(
    cv: Canvas,
    tl: TapeLook,
    f: TapeFrame,
    upstream: float,
    span: float,
    pocket,
    rng: np.random.Generator,
) -> None:
    """Clear cover film over the pockets still to come, peeled back before the pick pocket."""
    peel = upstream * tl.pitch * float(rng.uniform(0.55, 0.8))
    half = pocket[1] / 2 + 0.9
    end = upstream * span
    band = f.poly([(peel, -half), (end, -half), (end, half), (peel, half)])
    cv.polygon(band, fill=with_alpha((235, 238, 240), float(rng.uniform(0.12, 0.26))))
    for t in (-half, half):
        cv.line([f(peel, t), f(end, t)], with_alpha((250, 250, 250), 0.6), 0.12)
    cv.line([f(peel, -half), f(peel, half)], with_alpha((250, 250, 250), 0.8), 0.2)


def _shutter(cv: Canvas, tl: TapeLook, f: TapeFrame, pocket, span: float) -> None:
    """The feeder's cover plate over everything but a window round the pick pocket: machined
    metal shaded across, two screws, a bevelled window that shades the tape beside its edge."""
    wa, wc = 0.62 * tl.pitch + 0.5, pocket[1] / 2 + 0.8
    plate = shade(tl.feeder, 1.1)
    big = span + 20
    inside = [(-wa, -wc), (wa, -wc), (wa, wc), (-wa, wc)]
    cv.shadow([f.poly([(-wa, -wc), (wa, -wc), (wa, -wc + 0.5), (-wa, -wc + 0.5)])], 0.3, 0.5)
    bands = [(-big, -big, big, -wc), (-big, wc, big, big), (-big, -wc, -wa, wc), (wa, -wc, big, wc)]
    for s0, t0, s1, t1 in bands:
        a, b, c, d = f.poly([(s0, t0), (s0, t1), (s1, t1), (s1, t0)])
        cv.strips(a, b, c, d, [shade(plate, 0.92 + 0.16 * i / 7) for i in range(8)])
    cv.polygon(f.poly(inside), outline=shade(plate, 1.4), width=0.2)
    for s in (-wa - 3.0, wa + 3.0):
        c = f(s, wc + 1.6)
        cv.circle(c, 0.9 * f.upm, fill=shade(plate, 0.8))
        cv.circle(c, 0.75 * f.upm, fill=shade(plate, 1.15))
        cv.circle(c, 0.3 * f.upm, fill=shade(plate, 0.45))
