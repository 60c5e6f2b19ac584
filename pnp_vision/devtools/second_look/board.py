"""The down-looking camera over a board: a two-terminal part on its pads (tombstone).

The part is a box (or a MELF cylinder) tilted about the end resting on its pad and projected
straight down: lying flat (tilt <= 10 degrees, maybe shifted, turned, or rolled onto its side)
it shows its whole length; standing (tilt >= 60) it shows its raised end cap and a body
foreshortened to at most half its length, over a shadow cast by the board's light. Nothing is
drawn between 10 and 60 degrees. The board has solder mask over glass weave, copper under the
mask, vias, silkscreen, pads in one of three finishes, and either reflowed fillets or paste.
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
    place,
    rotate,
    rounded_rect_points,
    shade,
    smooth_noise,
)
from pnp_vision.devtools.second_look.parts import PACKAGES, Package, PartLook, part_look
from pnp_vision.devtools.second_look.shots import Ctx, Draft, pick, roi_half, uniform

FLAT_MAX, STANDING_MIN = 10.0, 60.0  # degrees of the long axis from the board

MASK_COLOURS: dict[str, Colour] = {
    "green": (34, 112, 62),
    "dark_green": (22, 70, 42),
    "blue": (24, 62, 140),
    "black": (24, 26, 28),
    "red": (150, 32, 34),
    "white": (226, 226, 220),
    "purple": (84, 40, 112),
}
FINISHES: dict[str, Colour] = {
    "hasl": (200, 200, 196),
    "enig": (224, 186, 96),
    "osp": (206, 132, 94),
}
SOLDER: Colour = (214, 216, 220)


@dataclass(frozen=True)
class BoardLook:
    mask: Colour
    weave: float  # grey levels of the glass weave under the mask
    weave_pitch: float  # mm
    pad: Colour
    silk: Colour
    reflowed: bool  # fillets (after the oven) or paste (placement check)
    light_az: float  # degrees: where shadows fall
    shadow_len: float  # shadow length per unit of height
    shadow_opacity: float
    outline: str
    traces: bool
    texture: float


def board_look(ctx: Ctx) -> BoardLook:
    r = ctx.look_rng
    mask_name = pick(r, ctx.style.masks)
    mask = shade(MASK_COLOURS[mask_name], float(r.uniform(0.85, 1.15)))
    silk = (20, 20, 22) if mask_name == "white" else pick(r, [(236, 236, 230), (232, 220, 120)])
    return BoardLook(
        mask=mask,
        weave=float(r.uniform(1, 4)),
        weave_pitch=float(r.uniform(0.35, 0.7)),
        pad=FINISHES[pick(r, list(FINISHES))],
        silk=silk,
        reflowed=bool(r.random() < 0.65),
        light_az=float(r.uniform(0, 360)),
        shadow_len=float(r.uniform(0.15, 1.1)),
        shadow_opacity=float(r.uniform(0.3, 0.65)),
        outline=pick(r, ["box", "brackets", "none", "courtyard"]),
        traces=bool(r.random() < 0.7),
        texture=ctx.texture(),
    )


def draw_board(cv: Canvas, b: BoardLook, rng: np.random.Generator, upm: float) -> None:
    """Mask over glass weave and copper, with the mask's uneven sheen."""
    w, h = cv.work_size
    gx, gy = cv.scene_grid()
    p = b.weave_pitch * upm
    weave = np.cos(2 * np.pi * gx / p) * np.cos(2 * np.pi * (gy / p + 0.5 * (gx // p)))
    sheen = smooth_noise(rng, (h, w), 60 * cv.k) * 10 + smooth_noise(rng, (h, w), 8 * cv.k) * 3
    cv.texture((weave * b.weave + sheen) * b.texture)
    if b.traces:
        copper = shade(b.mask, 1.18 if sum(b.mask) < 500 else 0.95)
        hx, hy = cv.half_extent
        for _ in range(int(rng.integers(1, 6))):
            y = float(rng.uniform(-hy, hy))
            x0 = float(rng.uniform(-hx, hx))
            width = min(float(rng.uniform(0.12, 0.3)) * upm, 9.0)
            bend = float(rng.choice([-1, 1])) * float(rng.uniform(10, 60))
            pts = [(-2 * hx, y), (x0, y), (x0 + bend, y + bend), (2 * hx, y + bend)]
            if rng.random() < 0.5:
                pts = [(q[1], q[0]) for q in pts]
            cv.line(pts, copper, width)
        for _ in range(int(rng.integers(2, 8))):
            c = (float(rng.uniform(-hx, hx)), float(rng.uniform(-hy, hy)))
            cv.circle(c, 0.35 * upm, fill=shade(b.pad, 0.9))
            cv.circle(c, 0.15 * upm, fill=(20, 20, 20))


def footprint(
    cv: Canvas, b: BoardLook, pkg: Package, centre: Point, angle: float, upm: float
) -> tuple[list[Point], list[Point]]:
    """Two pads and their silkscreen; returns the pads' outlines (scene units)."""
    L, W = pkg.length * upm, pkg.width * upm
    pad_l, pad_w = 0.5 * L, 1.15 * W
    pads = []
    for s in (-1, 1):
        pts = [(s * 0.5 * L + x, y) for x, y in rounded_rect_points(pad_l, pad_w, 0.1 * pad_w)]
        pads.append(place(pts, centre, angle))
        cv.polygon(pads[-1], fill=b.pad)
    sw = max(0.12 * upm, 0.5)
    ox, oy = 0.95 * L, 0.58 * W + 0.3 * upm
    if b.outline == "box":
        cv.polygon(
            place([(-ox, -oy), (ox, -oy), (ox, oy), (-ox, oy)], centre, angle),
            outline=b.silk,
            width=sw,
        )
    elif b.outline == "brackets":
        for s in (-1, 1):
            pts = [(s * 0.55 * ox, -oy), (s * ox, -oy), (s * ox, oy), (s * 0.55 * ox, oy)]
            cv.line(place(pts, centre, angle), b.silk, sw)
    elif b.outline == "courtyard":
        for s in (-1, 1):
            cv.line(place([(-0.3 * ox, s * oy), (0.3 * ox, s * oy)], centre, angle), b.silk, sw)
    return pads[0], pads[1]


def draw_solder_paste(cv: Canvas, pad: list[Point], rng: np.random.Generator) -> None:
    """Printed paste: a matte grey brick, slightly smaller than the pad, with grain."""
    cx = sum(p[0] for p in pad) / len(pad)
    cy = sum(p[1] for p in pad) / len(pad)
    inner = [(cx + 0.85 * (p[0] - cx), cy + 0.85 * (p[1] - cy)) for p in pad]
    cv.polygon(inner, fill=(150, 150, 152))
    xs, ys = [p[0] for p in inner], [p[1] for p in inner]
    for _ in range(40):
        q = (float(rng.uniform(min(xs), max(xs))), float(rng.uniform(min(ys), max(ys))))
        if _inside(q, inner):
            g = int(rng.integers(120, 190))
            cv.circle(q, 0.4, fill=(g, g, g + 2))


def _inside(q: Point, poly: list[Point]) -> bool:
    n, inside = len(poly), False
    for i in range(n):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
        if (y1 > q[1]) != (y2 > q[1]) and q[0] < x1 + (q[1] - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _hull(points: list[Point]) -> list[Point]:
    """Convex hull (monotone chain): the outline of a shadow from a box's corners."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[Point] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


@dataclass(frozen=True)
class Pose:
    """Where a part lies: `pivot` is the resting end's bottom edge (scene units), `angle` the
    direction from it to the other end, `tilt` its long axis above the board (degrees)."""

    pivot: Point
    angle: float
    tilt: float
    on_side: bool = False


def draw_two_terminal(
    cv: Canvas,
    pkg: Package,
    look: PartLook,
    pose: Pose,
    upm: float,
    b: BoardLook | None,
    marking: str | None = None,
    layer: str | None = "part",
) -> dict[str, float]:
    """A chip (or MELF) at `pose`: shadow, raised end cap, foreshortened top. Returns what
    the camera sees of it along its axis (units), for the truth record."""
    L = pkg.length * upm
    W, T = (
        (pkg.height * upm, pkg.width * upm) if pose.on_side else (pkg.width * upm, pkg.height * upm)
    )
    phi = math.radians(pose.tilt)
    c, s = math.cos(phi), math.sin(phi)
    melf = pkg.kind == "melf"
    if melf:
        T = W

    def proj(x: float, y: float, z: float) -> tuple[Point, float]:
        """Part-local (from the pivot along the axis, across, up) -> scene point and height."""
        xr, zr = x * c - z * s, x * s + z * c
        q = rotate((xr, y), pose.angle)
        return (pose.pivot[0] + q[0], pose.pivot[1] + q[1]), zr

    if b is not None:  # the shadow of the box's 8 corners on the board
        az = math.radians(b.light_az)
        corners = []
        for x in (0.0, L):
            for y in (-W / 2, W / 2):
                for z in (0.0, T):
                    p, hgt = proj(x, y, z)
                    k = hgt * b.shadow_len
                    corners.append((p[0] + k * math.cos(az), p[1] + k * math.sin(az)))
        blur = max(0.6, 0.5 * T + 0.15 * L * s)
        cv.shadow([_hull(corners)], blur=blur, opacity=b.shadow_opacity)
    e = (0.2 if pkg.kind == "chip_r" else 0.24 if pkg.kind == "chip_c" else 0.16) * L
    body = look.body
    if pkg.kind == "chip_r" and pose.on_side:
        body = (196, 194, 188)
    light = 0.8 + 0.2 * c
    metal = look.metal

    def face_top(x0: float, x1: float, colour: Colour) -> None:
        pts = [
            proj(x0, -W / 2, T)[0],
            proj(x1, -W / 2, T)[0],
            proj(x1, W / 2, T)[0],
            proj(x0, W / 2, T)[0],
        ]
        if melf:
            prof = [0.55 + 0.6 * math.sin(math.pi * (i + 0.5) / 9) for i in range(9)]
            cv.strips(
                pts[0],
                pts[3],
                pts[2],
                pts[1],
                [shade(colour, p * light) for p in prof],
                layer=layer,
            )
        else:
            cv.polygon(pts, fill=shade(colour, light), layer=layer)

    if c > 0.01:
        face_top(e, L - e, body)
        if melf:
            for i, x in enumerate((0.3, 0.42, 0.54)):
                face_top(x * L, (x + 0.07) * L, [(120, 60, 30), (200, 40, 30), (20, 20, 20)][i])
        if pkg.kind == "tant":
            stripe = (110, 70, 20) if body[0] > 150 else (205, 205, 200)
            face_top(0.14 * L, 0.24 * L, stripe)
        face_top(0.0, e, metal)
        face_top(L - e, L, metal)
        if marking and pkg.kind == "chip_r" and not pose.on_side and c > 0.7:
            mid = proj(L / 2, 0, T)[0]
            cv.text(mid, [marking], 0.42 * W, pose.angle, (228, 228, 222), squeeze=c, bold=True)
    if s > 0.01:  # the raised end: its metal cap, lit from above as it tilts up
        cap = shade(metal, 0.75 + 0.35 * s)
        if melf:
            mid = proj(L, 0, T / 2)[0]
            cv.ellipse(mid, T / 2 * s + 0.01, W / 2, pose.angle, fill=cap, layer=layer)
            cv.ellipse(mid, T / 4 * s + 0.01, W / 4, pose.angle, fill=shade(cap, 1.15))
        else:
            pts = [
                proj(L, -W / 2, 0)[0],
                proj(L, W / 2, 0)[0],
                proj(L, W / 2, T)[0],
                proj(L, -W / 2, T)[0],
            ]
            cv.polygon(pts, fill=cap, layer=layer)
            hi = [
                proj(L, -W * 0.35, T * 0.55)[0],
                proj(L, W * 0.35, T * 0.55)[0],
                proj(L, W * 0.35, T * 0.75)[0],
                proj(L, -W * 0.35, T * 0.75)[0],
            ]
            cv.polygon(hi, fill=shade(cap, 1.2))
    seen = L * c + T * s
    return {"length": L, "width": W, "thickness": T, "seen_length": seen}


def _fillets(cv: Canvas, pose: Pose, L: float, W: float, pad_reach: float) -> None:
    """Reflowed solder from each terminal out to its pad's end: a glossy meniscus."""
    for x_end, out in ((0.0, -1), (L, 1)):
        a = rotate((x_end, -W * 0.55), pose.angle)
        bpt = rotate((x_end + out * pad_reach, -W * 0.55), pose.angle)
        cpt = rotate((x_end + out * pad_reach, W * 0.55), pose.angle)
        d = rotate((x_end, W * 0.55), pose.angle)
        pts = [(pose.pivot[0] + q[0], pose.pivot[1] + q[1]) for q in (a, bpt, cpt, d)]
        colours = [
            mix(SOLDER, (255, 255, 255), 0.5),
            SOLDER,
            shade(SOLDER, 0.8),
            shade(SOLDER, 0.65),
            shade(SOLDER, 0.75),
        ]
        cv.strips(pts[0], pts[1], pts[2], pts[3], colours)


def placed_chip(ctx: Ctx) -> Draft:
    """A two-terminal part on its pads, lying (NO) or standing on one end (YES)."""
    b = board_look(ctx)
    rng = ctx.rng
    pkg = PACKAGES[pick(rng, ctx.style.chips)]
    look = part_look(ctx.look_rng, pkg, from_below=False)
    hx, hy = roi_half(ctx.size, 0.75)
    L_units = min(uniform(rng, ctx.style.chip_length), 1.2 * min(hx, hy))
    upm = L_units / pkg.length
    L = pkg.length * upm
    reach = 0.8 * L
    centre = rotate(
        (
            float(rng.uniform(-1, 1) * max(0.0, 0.6 * (hx - reach))),
            float(rng.uniform(-1, 1) * max(0.0, 0.6 * (hy - reach))),
        ),
        -ctx.rotation,
    )  # placed in image axes (the ROI's)
    base_angle = 90.0 * int(rng.integers(2)) + float(rng.normal(0, 1.5))
    cv = ctx.canvas(b.mask)
    draw_board(cv, b, rng, upm)
    _neighbours(cv, ctx, b, upm, centre, L)
    pad_a, pad_b = footprint(cv, b, pkg, centre, base_angle, upm)
    standing = ctx.want_yes
    end = int(rng.integers(2))  # which pad the part stands on / which end is "A"
    axis = base_angle + (0.0 if end == 0 else 180.0)
    if standing:
        tilt = float(rng.uniform(80, 90)) if rng.random() < 0.6 else float(rng.uniform(60, 80))
        turn, shift, across, on_side = (
            float(rng.normal(0, 4)),
            float(rng.uniform(-0.06, 0.1)),
            0.0,
            False,
        )
    else:
        tilt = float(rng.uniform(0, 3)) if rng.random() < 0.7 else float(rng.uniform(3, FLAT_MAX))
        turn = float(rng.normal(0, 6)) if rng.random() < 0.5 else 0.0
        shift = float(rng.uniform(-0.18, 0.18)) if rng.random() < 0.5 else 0.0
        across = float(rng.uniform(-0.3, 0.3)) * pkg.width * upm if rng.random() < 0.3 else 0.0
        on_side = bool(rng.random() < 0.12) and pkg.kind in ("chip_r", "chip_c")
    a_rad = math.radians(axis)
    start = -L / 2 + shift * L
    pivot = (
        centre[0] + start * math.cos(a_rad) - across * math.sin(a_rad),
        centre[1] + start * math.sin(a_rad) + across * math.cos(a_rad),
    )
    pose = Pose(pivot, axis + turn, tilt, on_side)
    pads = (pad_a, pad_b) if end == 1 else (pad_b, pad_a)  # pads[1]: the resting end's pad
    if not b.reflowed:
        for pad in pads:
            draw_solder_paste(cv, pad, rng)
    elif standing:
        _solder_dome(cv, pads[0])
        foot = (pivot[0] - 0.1 * L * math.cos(a_rad), pivot[1] - 0.1 * L * math.sin(a_rad))
        cv.ellipse(foot, 0.22 * L, 0.7 * pkg.width * upm, axis, fill=shade(SOLDER, 0.85))
    else:
        _fillets(cv, pose, L, pkg.width * upm * (1.0 if not on_side else 0.8), 0.22 * L)
    code = pick(rng, ["103", "472", "1001", "4R7", "220", "01C", "0"])
    seen = draw_two_terminal(cv, pkg, look, pose, upm, b, marking=code)
    if rng.random() < 0.6:
        ref = pick(rng, ["R", "C", "L", "D"]) + str(int(rng.integers(1, 240)))
        size = min(0.8 * upm, float(rng.uniform(6, 14)))
        at = rotate((0, 0.58 * pkg.width * upm + 0.3 * upm + 0.9 * size + 2), base_angle)
        cv.text((centre[0] + at[0], centre[1] + at[1]), [ref], size, base_angle, b.silk, bold=True)
    return Draft(
        "placed_chip",
        cv,
        [("tombstone", {}, "YES" if standing else "NO")],
        {
            "package": pkg.name,
            "tilt": tilt,
            "axis": pose.angle,
            "pivot": pivot,
            "centre": centre,
            "upm": upm,
            "on_side": on_side,
            **seen,
            "look": {"board": b, "part": look},
        },
    )


def _solder_dome(cv: Canvas, pad: list[Point]) -> None:
    """Solder reflowed on a pad with nothing on it: a shiny dome."""
    cx = sum(p[0] for p in pad) / len(pad)
    cy = sum(p[1] for p in pad) / len(pad)
    inner = [(cx + 0.9 * (p[0] - cx), cy + 0.9 * (p[1] - cy)) for p in pad]
    cv.polygon(inner, fill=shade(SOLDER, 0.8))
    mid = [(cx + 0.55 * (p[0] - cx), cy + 0.55 * (p[1] - cy)) for p in pad]
    cv.polygon(mid, fill=SOLDER)
    cv.circle((cx - 0.15 * (pad[0][0] - cx), cy), 0.5, fill=(255, 255, 255))


def _neighbours(cv: Canvas, ctx: Ctx, b: BoardLook, upm: float, centre: Point, L: float) -> None:
    """Other parts lying flat toward the frame's edges, never near the part in question."""
    rng = ctx.rng
    hx, hy = cv.half_extent
    for _ in range(int(rng.integers(0, 4))):
        pkg = PACKAGES[pick(rng, ["R0402", "C0402", "R0603", "C0603", "C0805"])]
        x, y = float(rng.uniform(-hx, hx)), float(rng.uniform(-hy, hy))
        if math.dist((x, y), centre) < 1.3 * L + 2.2 * pkg.length * upm:
            continue
        angle = 90.0 * int(rng.integers(2))
        footprint(cv, b, pkg, (x, y), angle, upm)
        look = part_look(rng, pkg, from_below=False)
        a = math.radians(angle)
        half = pkg.length * upm / 2
        pivot = (x - half * math.cos(a), y - half * math.sin(a))
        draw_two_terminal(cv, pkg, look, Pose(pivot, angle, 0.0), upm, b, layer=None)
