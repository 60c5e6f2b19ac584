"""The up-looking camera: a nozzle tip from below, a reticle, and sometimes a held part.

Scenes `nozzle_empty` (nozzle_alignment + part_on_nozzle NO) and `nozzle_held`
(part_on_nozzle YES). The alignment label follows the documented gap: YES when the tip's centre
is within 2.5 units of the reticle's centre, NO from 12 units, nothing drawn in between; tip
and reticle centre stay inside the middle-half ROI (and its 4:3 view).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pnp_vision.devtools.second_look.canvas import (
    Canvas,
    Colour,
    Point,
    place,
    rotate,
    shade,
    smooth_noise,
    with_alpha,
)
from pnp_vision.devtools.second_look.parts import PACKAGES, PartDrawer, draw_bottom, part_look
from pnp_vision.devtools.second_look.shots import Ctx, Draft, pick, roi_half, uniform

YES_MAX, NO_MIN, NO_MAX = 2.5, 12.0, 40.0  # units: the nozzle_alignment gap

COLOURS: dict[str, Colour] = {
    "amber": (255, 168, 0),
    "cyan": (0, 224, 255),
    "white": (244, 244, 240),
    "green": (60, 255, 70),
    "red": (255, 48, 36),
    "magenta": (255, 70, 220),
    "yellow": (255, 240, 50),
}


@dataclass(frozen=True)
class TipLook:
    make: str
    radius: float  # the tip face's outer radius (hex: corner radius), units
    bore: float  # bore radius as a share of the radius
    face: int  # face brightness
    rim: int  # rim brightness
    halo: float  # cone / reflector radius as a multiple of the radius
    hex_angle: float
    leds: int  # ring-light reflections on shiny faces
    backdrop: str
    back_level: int


@dataclass(frozen=True)
class ReticleLook:
    kind: str
    colour: Colour
    width: float  # units
    arm: float  # units; 0: across the frame
    gap: float
    dash: float
    space: float
    radius: float
    tick: float
    turns: bool  # turns with the camera (else level in the image)
    physical: bool  # in the optics (blurred, lit) rather than a software overlay
    outline: bool


def tip_look(ctx: Ctx) -> TipLook:
    r = ctx.look_rng
    return TipLook(
        make=pick(r, ctx.style.tips),
        radius=uniform(r, ctx.style.tip_radius),
        bore=float(r.uniform(0.16, 0.34)),
        face=int(r.integers(150, 236)),
        rim=int(r.integers(170, 250)),
        halo=float(r.uniform(1.7, 2.8)),
        hex_angle=float(r.uniform(0, 60)),
        leds=int(r.choice([0, 0, 8, 12, 16])),
        backdrop=pick(r, ctx.style.backdrops),
        back_level=int(r.integers(4, 26)),
    )


def reticle_look(ctx: Ctx) -> ReticleLook:
    r = ctx.look_rng
    return ReticleLook(
        kind=pick(r, ctx.style.reticles),
        colour=COLOURS[pick(r, ctx.style.reticle_colours)],
        width=float(r.uniform(0.45, 1.1)),
        arm=0.0 if r.random() < 0.5 else float(r.uniform(28, 70)),
        gap=0.0 if r.random() < 0.6 else float(r.uniform(3, 8)),
        dash=float(r.uniform(3, 8)),
        space=float(r.uniform(2, 5)),
        radius=float(r.uniform(9, 30)),
        tick=float(r.uniform(5, 11)),
        turns=bool(r.random() < ctx.style.reticle_turns),
        physical=bool(r.random() < 0.25),
        outline=bool(r.random() < 0.25),
    )


# -- backdrop and tip -----------------------------------------------------------------------
def backdrop(cv: Canvas, ctx: Ctx, tip: TipLook) -> None:
    """What lies behind the nozzle: darkness, the machine out of focus, or a lit diffuser."""
    tex = ctx.texture()
    w, h = cv.work_size
    noise = smooth_noise(ctx.rng, (h, w), 40 * cv.k)
    if tip.backdrop == "backlit":
        base = 150 + 4 * tip.back_level
        cv.image.paste((base, base, base - 6), (0, 0, w, h))
        cv.texture(noise * 14 * tex)
        return
    level = tip.back_level
    cv.image.paste((level, level, level + 3), (0, 0, w, h))
    cv.texture(noise * 4 * tex, (200, 210, 255))
    if tip.backdrop == "machine":
        hx, hy = cv.half_extent
        for _ in range(int(ctx.rng.integers(2, 6))):
            x, y = ctx.rng.uniform(-hx, hx), ctx.rng.uniform(-hy, hy)
            if abs(x) < 60 and abs(y) < 45:
                x += math.copysign(70, x)  # keep the machine's clutter outside the middle
            g = int(ctx.rng.integers(25, 70 + 40 * int(tex > 1)))
            if ctx.rng.random() < 0.5:
                cv.circle((x, y), float(ctx.rng.uniform(12, 40)), fill=(g, g, g + 4))
            else:
                a = float(ctx.rng.uniform(0, 180))
                pts = [(-40.0, -8.0), (40.0, -8.0), (40.0, 8.0), (-40.0, 8.0)]
                cv.polygon(place(pts, (x, y), a), fill=(g, g - 2, g - 4))
        cv.blur(6.0)


def draw_tip(cv: Canvas, c: Point, t: TipLook, rng: np.random.Generator) -> None:
    """The nozzle seen from below, concentric on `c`; mask layer "tip" is the tip face."""
    R = t.radius
    if t.backdrop == "backlit":
        body = int(rng.integers(14, 40))
        cv.circle(c, R * t.halo * 0.8, fill=(body, body, body + 2))
        cv.circle(c, R, fill=(body + 18, body + 18, body + 20), layer="tip")
        cv.circle(c, R * t.bore, fill=(body // 2, body // 2, body // 2))
        return
    f, rim = t.face, t.rim
    if t.make == "hex":
        cv.shadow([_disc(c, R * 1.25)], blur=R * 0.25, opacity=1.0, colour=(34, 34, 38))
        hexagon = [
            (
                R * math.cos(math.radians(t.hex_angle + 60 * i)),
                R * math.sin(math.radians(t.hex_angle + 60 * i)),
            )
            for i in range(6)
        ]
        pts = [(c[0] + x, c[1] + y) for x, y in hexagon]
        dark = 26 + (f - 150) // 8
        cv.polygon(pts, fill=(dark, dark, dark + 4), layer="tip")
        for i in range(6):
            lit = 0.6 + 0.4 * math.cos(math.radians(60 * i + t.hex_angle - 30))
            v = int(rim * (0.55 + 0.45 * lit))
            cv.line([pts[i], pts[(i + 1) % 6]], (v, v, v - 6), R * 0.085)
        cv.circle(c, R * 0.55, fill=(dark + 26, dark + 26, dark + 30))
        cv.ring(c, R * 0.55, R * 0.04, (150, 150, 146))
        cv.circle(c, R * t.bore, fill=(4, 4, 5))
    elif t.make == "tube":
        cv.shadow([_disc(c, R * t.halo)], blur=R * 0.4, opacity=1.0, colour=(70, 70, 74))
        cv.radial(c, R * t.halo * 0.8, [(1.0, (56, 56, 60)), (0.0, (96, 96, 100))])
        cv.radial(
            c,
            R,
            [
                (1.0, (110, 110, 108)),
                (0.93, (rim, rim, rim - 8)),
                (0.7, (f, f, f - 6)),
                (0.0, (f - 40, f - 40, f - 44)),
            ],
            "tip",
        )
        _leds(cv, c, R * 0.8, t, R * 0.07)
        cv.circle(c, R * t.bore, fill=(6, 6, 7))
    elif t.make == "rubber":
        cv.shadow([_disc(c, R * t.halo)], blur=R * 0.15, opacity=1.0, colour=(212, 212, 206))
        cv.radial(c, R * t.halo * 0.95, [(1.0, (170, 170, 166)), (0.0, (228, 228, 222))])
        cv.circle(c, R, fill=(34, 33, 36), layer="tip")
        cv.ring(c, R * 0.92, R * 0.05, (70, 70, 72))
        cv.circle(c, R * t.bore, fill=(10, 10, 11))
    elif t.make == "ceramic":
        cv.shadow([_disc(c, R * 1.6)], blur=R * 0.3, opacity=1.0, colour=(40, 40, 42))
        cv.radial(
            c,
            R,
            [(1.0, (150, 146, 136)), (0.85, (f + 10, f + 8, f)), (0.0, (min(255, f + 25),) * 3)],
            "tip",
        )
        cv.circle(c, R * t.bore + R * 0.05, fill=(118, 116, 110))
        cv.circle(c, R * t.bore, fill=(30, 30, 32))
    elif t.make == "stepped":
        cv.shadow([_disc(c, R * 2.3)], blur=R * 0.3, opacity=1.0, colour=(38, 38, 40))
        cv.circle(c, R * 1.6, fill=(84, 84, 86))
        cv.ring(c, R * 1.6 - R * 0.06, R * 0.06, (rim - 20,) * 3)
        cv.ring(c, R * 1.15, R * 0.05, (120, 120, 118))
        cv.radial(
            c,
            R,
            [(1.0, (rim, rim, rim - 6)), (0.88, (f, f, f - 4)), (0.0, (f - 30, f - 30, f - 32))],
            "tip",
        )
        _leds(cv, c, R * 0.75, t, R * 0.06)
        cv.circle(c, R * t.bore, fill=(5, 5, 6))
    else:  # reflector
        tint = (int(120 + f / 4), int(140 + f / 4), int(160 + f / 4))
        cv.shadow([_disc(c, R * t.halo * 1.2)], blur=R * 0.2, opacity=1.0, colour=tint)
        cv.ring(c, R * t.halo * 1.12, R * 0.12, shade(tint, 0.6))
        cv.circle(c, R, fill=(48, 48, 52), layer="tip")
        cv.ring(c, R * 0.95, R * 0.07, (rim, rim, rim))
        cv.circle(c, R * t.bore, fill=(6, 6, 7))


def _disc(c: Point, r: float, n: int = 48) -> list[Point]:
    return [
        (c[0] + r * math.cos(2 * math.pi * i / n), c[1] + r * math.sin(2 * math.pi * i / n))
        for i in range(n)
    ]


def _leds(cv: Canvas, c: Point, r: float, t: TipLook, size: float) -> None:
    """The ring light's LEDs mirrored in a polished face."""
    for i in range(t.leds):
        a = 2 * math.pi * i / t.leds + t.hex_angle
        cv.circle((c[0] + r * math.cos(a), c[1] + r * math.sin(a)), size, fill=(255, 255, 250))


# -- reticle --------------------------------------------------------------------------------
def draw_reticle(cv: Canvas, c: Point, r: ReticleLook, level_angle: float) -> None:
    """The reticle centred on `c` (scene units), point-symmetric about it; `level_angle`
    turns it back to the image's axes when it does not turn with the camera."""
    a = 0.0 if r.turns else level_angle
    colour = with_alpha(r.colour, 0.92)
    hx, hy = cv.half_extent
    arm = r.arm or 2 * math.hypot(hx, hy)

    def seg(p: float, q: float, axis: int, across: float = 0.0) -> list[Point]:
        pts = [(p, across), (q, across)] if axis == 0 else [(across, p), (across, q)]
        return place(pts, c, a)

    def stroke(pts: list[Point], w: float) -> None:
        if r.outline:
            cv.line(pts, (0, 0, 0, 150), w + 0.8, layer=None)
        cv.line(pts, colour, w, layer="reticle")

    kind = r.kind
    halves = [(axis, sgn) for axis in (0, 1) for sgn in (1, -1)]
    if kind in ("cross", "gap", "ticks"):
        g = r.gap if kind == "gap" else 0.0
        for axis, sgn in halves:
            stroke(seg(sgn * g, sgn * arm, axis), r.width)
    if kind in ("dashed", "dashed_ticks"):
        for axis, sgn in halves:
            p = r.gap
            while p < arm:
                stroke(seg(sgn * p, sgn * min(arm, p + r.dash), axis), r.width)
                p += r.dash + r.space
    if kind in ("ticks", "dashed_ticks"):
        n = int(min(arm, 60) / r.tick)
        for axis, sgn in halves:
            for i in range(1, n + 1):
                half = 2.6 if i % 5 == 0 else 1.5
                p = sgn * i * r.tick
                stroke(seg(-half, half, 1 - axis, p), r.width * 0.8)
    if kind in ("circle", "double_circle", "brackets"):
        small = r.radius * 0.35
        for axis, sgn in halves:
            stroke(seg(sgn * 0.0, sgn * small, axis), r.width * 0.8)
    if kind in ("circle", "double_circle"):
        cv.circle(c, r.radius + r.width / 2, outline=colour, width=r.width, layer=None)
        _mask_ring(cv, c, r.radius, r.width)
        if kind == "double_circle":
            cv.circle(c, r.radius * 1.8 + r.width / 2, outline=colour, width=r.width)
            _mask_ring(cv, c, r.radius * 1.8, r.width)
    if kind == "brackets":
        s, b = r.radius, r.radius * 0.45
        for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            pts = [(sx * (s - b), sy * s), (sx * s, sy * s), (sx * s, sy * (s - b))]
            stroke(place(pts, c, a), r.width)


def _mask_ring(cv: Canvas, c: Point, radius: float, width: float) -> None:
    if cv.masks is not None:
        n = 96
        pts = [
            (
                c[0] + radius * math.cos(2 * math.pi * i / n),
                c[1] + radius * math.sin(2 * math.pi * i / n),
            )
            for i in range(n + 1)
        ]
        cv.line(pts, (0, 0, 0, 0), width, layer="reticle")


def reticle_overlay(ctx: Ctx, c: Point, r: ReticleLook, track: Canvas | None):
    """A software crosshair drawn on the finished frame (no supersampling: aliased like an
    overlay); with `track`, its mask goes to the tracked canvas too."""

    def draw(image: Image.Image) -> None:
        cv = Canvas.over(image, rotation=ctx.rotation)
        draw_reticle(cv, c, r, -ctx.rotation)
        if track is not None and track.masks is not None:
            draw_reticle(track, c, r, -ctx.rotation)

    return draw


# -- scenes ---------------------------------------------------------------------------------
def _reticle_placer(ctx: Ctx, hx: float, hy: float):
    """Where reticles go: anywhere in the ROI's middle for a family; for a rig one fixed spot
    of its look (drawn once, so the rig's later look draws stay in step)."""
    w = ctx.style.reticle_wander
    fixed = (
        float(ctx.look_rng.uniform(-0.15, 0.15) * hx),
        float(ctx.look_rng.uniform(-0.15, 0.15) * hy),
    )

    def place_reticle() -> Point:
        if w <= 0:
            return fixed
        return (float(ctx.rng.uniform(-w, w) * hx), float(ctx.rng.uniform(-w, w) * hy))

    return place_reticle


def nozzle_empty(ctx: Ctx) -> Draft:
    """An empty nozzle near (YES) or clearly off (NO) the reticle's centre."""
    tip, ret = tip_look(ctx), reticle_look(ctx)
    hx, hy = roi_half(ctx.size)
    R = min(tip.radius, hy - 4)
    tip = TipLook(**{**tip.__dict__, "radius": R})
    reticle_at = _reticle_placer(ctx, hx, hy)
    for _ in range(200):
        rc = reticle_at()
        d = ctx.rng.uniform(0, YES_MAX) if ctx.want_yes else ctx.rng.uniform(NO_MIN, NO_MAX)
        a = ctx.rng.uniform(0, 2 * math.pi)
        tc = (rc[0] + d * math.cos(a), rc[1] + d * math.sin(a))
        if abs(tc[0]) + R <= hx - 1 and abs(tc[1]) + R <= hy - 1:
            break
    else:  # a big tip in a tight ROI: the reticle moves to make room
        rc, d = (0.0, 0.0), (0.0 if ctx.want_yes else NO_MIN)
        tc = (d, 0.0)
    rc, tc = _to_scene(ctx, rc), _to_scene(ctx, tc)  # placed in image axes (the ROI's)
    cv = _draw_rig(ctx, tip, ret, rc)
    draw_tip(cv, tc, tip, ctx.rng)
    overlay = _finish_reticle(ctx, cv, ret, rc)
    answer = "YES" if ctx.want_yes else "NO"
    return Draft(
        "nozzle_empty",
        cv,
        [("nozzle_alignment", {}, answer), ("part_on_nozzle", {}, "NO")],
        {
            "tip": tc,
            "reticle": rc,
            "offset": float(math.dist(tc, rc)),
            "radius": R,
            "make": tip.make,
            "reticle_kind": ret.kind,
            "roi_half": (hx, hy),
            "look": {"tip": tip, "reticle": ret},
        },
        overlay,
    )


def nozzle_held(ctx: Ctx) -> Draft:
    """A part held on the nozzle, seen from below (any package, any rotation)."""
    tip, ret = tip_look(ctx), reticle_look(ctx)
    hx, hy = roi_half(ctx.size)
    pkg = PACKAGES[pick(ctx.rng, ctx.style.packages)]
    extent = min(uniform(ctx.rng, ctx.style.held_size), 2 * hy - 6)
    upm = extent / max(pkg.span_x, pkg.span_y)
    nozzle_mm = float(np.clip(ctx.rng.uniform(0.45, 0.8) * min(pkg.width, 3.0), 0.22, 2.2))
    tip = TipLook(**{**tip.__dict__, "radius": nozzle_mm / 2 * upm})
    if ctx.rng.random() < 0.3:
        angle = float(ctx.rng.uniform(0, 360))
    else:
        angle = 90.0 * int(ctx.rng.integers(4)) + float(ctx.rng.normal(0, 4))
    pick_off = ctx.rng.normal(0, 0.08, 2) * min(pkg.width, 3.0) * upm
    reach = min(0.5 * math.hypot(pkg.span_x, pkg.span_y) * upm, hy - 2)
    # the part sits where an empty tip would: on the reticle or as far off as a NO tip
    rc = _reticle_placer(ctx, hx, hy)()
    tc = rc
    for _ in range(100):
        d = ctx.rng.uniform(0, YES_MAX) if ctx.rng.random() < 0.5 else ctx.rng.uniform(0, NO_MAX)
        a = ctx.rng.uniform(0, 2 * math.pi)
        tc = (rc[0] + d * math.cos(a), rc[1] + d * math.sin(a))
        if abs(tc[0]) + reach <= hx and abs(tc[1]) + reach <= hy:
            break
    else:
        tc = (0.0, 0.0)
    rc, tc = _to_scene(ctx, rc), _to_scene(ctx, tc)  # placed in image axes (the ROI's)
    pc = (tc[0] + float(pick_off[0]), tc[1] + float(pick_off[1]))
    cv = _draw_rig(ctx, tip, ret, rc)
    draw_tip(cv, tc, tip, ctx.rng)
    look = part_look(ctx.look_rng, pkg, from_below=True)
    if tip.backdrop == "backlit":
        look = type(look)(look.body, look.metal, look.accent, look.gloss, silhouette=True)
    draw_bottom(PartDrawer(cv, pkg, pc, angle, upm, look))
    overlay = _finish_reticle(ctx, cv, ret, rc)
    return Draft(
        "nozzle_held",
        cv,
        [("part_on_nozzle", {}, "YES")],
        {
            "tip": tc,
            "part": pc,
            "package": pkg.name,
            "angle": angle,
            "upm": upm,
            "reticle": rc,
            "roi_half": (hx, hy),
            "look": {"tip": tip, "reticle": ret, "part": look},
        },
        overlay,
    )


def _to_scene(ctx: Ctx, p: Point) -> Point:
    """An image-axes point (units from the frame centre) in the turned camera's scene."""
    return rotate(p, -ctx.rotation)


def _draw_rig(ctx: Ctx, tip: TipLook, ret: ReticleLook, rc: Point) -> Canvas:
    cv = ctx.canvas((tip.back_level,) * 3)
    backdrop(cv, ctx, tip)
    return cv


def _finish_reticle(ctx: Ctx, cv: Canvas, ret: ReticleLook, rc: Point):
    if ret.physical:  # etched in the optics: under the lens blur and the light like the rest
        draw_reticle(cv, rc, ret, -ctx.rotation)
        return None
    return reticle_overlay(ctx, rc, ret, cv if cv.masks is not None else None)
