"""What a family of synthetic frames varies: the generator's knobs, the label rules they must
respect, and `WORLD`, the preset that turns every knob on at real proportions.

Every knob's default draws nothing new and draws no extra random numbers, so `Variation()`
keeps drawing the generator's original frames byte for byte. A knob that picks among looks
(`nozzles`, `reticles`, `packages`, `tapes`, `pads`, `boards`) lists "classic" for the
original look, so a family can mix it with the real ones.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

Range = tuple[float, float]

# The label of nozzle_alignment, in units of tip-centre-to-crosshair distance: YES up to
# CENTRED_MAX, NO from OFF_MIN. Offsets in between are a no-label gap: no frame is ever drawn
# there, so neither training nor evaluation holds a frame whose answer is a matter of taste.
CENTRED_MAX = 3.0
OFF_MIN = 12.0
# The label of tombstone, in degrees between the part's long axis and the board: YES from
# STANDING_MIN (standing, or lifted past it), NO up to FLAT_MAX; nothing is drawn in between.
STANDING_MIN = 60.0
FLAT_MAX = 10.0
# How a classic nozzle tip can be drawn. "metallic" is the original look (a lit disc with a
# specular highlight and a dark bore); the others change everything but the geometry.
TIP_STYLES = ("metallic", "disc", "ring", "gradient", "outline")

CLASSIC = "classic"
NOZZLE_MAKES = (CLASSIC, "juki", "samsung", "yamaha", "cp")
RETICLES = (CLASSIC, "cross", "dashed", "circle", "ticks", "gap")
CHIPS = ("0201", "0402", "0603", "0805", "1206")
PACKAGES = (CLASSIC, *CHIPS, "melf", "sot23", "sot223", "soic8", "tssop", "qfn", "qfp", "bga")
PACKAGES += ("elco", "tantalum", "led")
TWO_TERMINAL = (*CHIPS, "melf", "tantalum", "led")  # what can tombstone
TAPES = (CLASSIC, "paper", "black", "clear")
PAD_SHAPES = (CLASSIC, "rect", "rounded", "oval", "home")
BOARDS = (CLASSIC, "textured")

_CHOICES = {
    "tip_styles": TIP_STYLES,
    "nozzles": NOZZLE_MAKES,
    "reticles": RETICLES,
    "packages": PACKAGES,
    "tapes": TAPES,
    "pads": PAD_SHAPES,
    "boards": BOARDS,
}
_WORLD_KNOBS = (
    "nozzles", "reticles", "packages", "tapes", "pads", "boards", "standing_tilt", "flat_tilt",
    "canvas", "rotation", "defocus", "motion_blur", "exposure", "vignette",
)  # fmt: skip


@dataclass(frozen=True)
class Variation:
    """What a family of frames varies beyond the defaults (the defaults are the generator's
    original ranges, so default frames are byte-identical to what it always drew).

    Classic knobs (lengths in units, 1/224 of the frame's shorter side):
    ``shift``: crosshair distance from the image centre in units, drawn in a random direction
    (None: up to 20 units each way, independently). ``tip_radius``: the nozzle tip's radius
    (for a real nozzle make: the range its size in units is kept in). ``tip_styles``: drawn
    uniformly from these. ``centred`` / ``off``: the tip's distance from the crosshair for
    nozzle_alignment YES / NO (must stay on their side of the label gap). ``harshness``: the
    lighting ranges scaled by a factor drawn from this range (1: original). ``jpeg_quality``:
    frames go through JPEG at a quality drawn from this range (``jpeg_share`` of them).

    World knobs (real parts in millimetres, drawn at a per-frame camera scale; see
    docs/evaluation.md for each): ``nozzles`` (tip makes), ``reticles`` (crosshair styles),
    ``packages`` (held parts, parts in pockets, tombstoned chips), ``tapes``, ``pads``,
    ``boards``, ``standing_tilt`` / ``flat_tilt`` (degrees, either side of the tombstone label
    gap), and the camera: ``canvas`` (draw at most this many pixels on the shorter side, then
    resize once), ``rotation`` (degrees, either sign), ``defocus`` (blur sigma, units),
    ``motion_blur`` (streak length, units), ``exposure`` (stops), ``vignette`` (corner loss).
    ``markings``: the `chip` scene's world, "classic" (the original frames) or "world" (real
    package families, markings and polarity marks: `synthetic_marking`).
    """

    shift: Range | None = None
    tip_radius: Range = (22.0, 36.0)
    tip_styles: tuple[str, ...] = ("metallic",)
    centred: Range = (0.0, 2.5)
    off: Range = (14.0, 40.0)
    harshness: Range = (1.0, 1.0)
    jpeg_quality: tuple[int, int] | None = None
    jpeg_share: float = 1.0
    nozzles: tuple[str, ...] = (CLASSIC,)
    reticles: tuple[str, ...] = (CLASSIC,)
    packages: tuple[str, ...] = (CLASSIC,)
    tapes: tuple[str, ...] = (CLASSIC,)
    pads: tuple[str, ...] = (CLASSIC,)
    boards: tuple[str, ...] = (CLASSIC,)
    standing_tilt: Range = (90.0, 90.0)
    flat_tilt: Range = (0.0, 0.0)
    canvas: int | None = None
    rotation: Range = (0.0, 0.0)
    defocus: Range = (0.0, 0.0)
    motion_blur: Range = (0.0, 0.0)
    exposure: Range = (0.0, 0.0)
    vignette: Range = (0.0, 0.0)
    markings: str = CLASSIC

    @functools.cached_property
    def world(self) -> bool:
        """Whether any world knob is on: such frames are drawn by the camera pipeline
        (`synthetic_camera.shoot`), the others exactly as the generator always drew them."""
        return any(getattr(self, n) != _DEFAULTS[n] for n in _WORLD_KNOBS)

    def check(self) -> list[str]:
        """Problems with the settings, for one error message (empty: fine)."""
        bad = []
        for name in ("shift", "tip_radius", "centred", "off", "harshness", "rotation"):
            r = getattr(self, name)
            if r is not None and not (len(r) == 2 and 0 <= r[0] <= r[1]):
                bad.append(f"{name} must be a range lo <= hi of values >= 0, got {r!r}")
        for name in ("standing_tilt", "flat_tilt", "defocus", "motion_blur", "vignette"):
            r = getattr(self, name)
            if not (len(r) == 2 and 0 <= r[0] <= r[1]):
                bad.append(f"{name} must be a range lo <= hi of values >= 0, got {r!r}")
        if not (self.tip_radius[0] >= 2 and self.tip_radius[1] <= 80):
            bad.append(f"tip_radius must lie in 2..80 units, got {self.tip_radius!r}")
        if self.shift is not None and self.shift[1] > 80:
            bad.append(f"shift must be at most 80 units, got {self.shift!r}")
        if self.centred[1] > CENTRED_MAX or self.off[0] < OFF_MIN:
            bad.append(
                f"nozzle offsets must stay out of the label gap: centred <= {CENTRED_MAX:g},"
                f" off >= {OFF_MIN:g} units, got centred {self.centred!r}, off {self.off!r}"
            )
        if self.standing_tilt[0] < STANDING_MIN or self.standing_tilt[1] > 90:
            bad.append(
                f"standing_tilt must stay in {STANDING_MIN:g}..90 degrees (out of the"
                f" tombstone label gap), got {self.standing_tilt!r}"
            )
        if self.flat_tilt[1] > FLAT_MAX:
            bad.append(
                f"flat_tilt must stay in 0..{FLAT_MAX:g} degrees (out of the tombstone label"
                f" gap), got {self.flat_tilt!r}"
            )
        if not 0 < self.harshness[1] <= 4:
            bad.append(f"harshness must lie in 0..4, got {self.harshness!r}")
        for name, known in _CHOICES.items():
            chosen = getattr(self, name)
            unknown = [s for s in chosen if s not in known]
            if unknown or not chosen:
                bad.append(f"{name} must be some of {', '.join(known)}, got {unknown or '[]'}")
        q = self.jpeg_quality
        if q is not None and not (len(q) == 2 and 5 <= q[0] <= q[1] <= 100):
            bad.append(f"jpeg_quality must be a range within 5..100, got {q!r}")
        if not 0 <= self.jpeg_share <= 1:
            bad.append(f"jpeg_share must lie in 0..1, got {self.jpeg_share!r}")
        if self.canvas is not None and not 64 <= self.canvas <= 4096:
            bad.append(f"canvas must be None or 64..4096 pixels, got {self.canvas!r}")
        if self.rotation[1] > 180:
            bad.append(f"rotation must lie in 0..180 degrees, got {self.rotation!r}")
        e = self.exposure
        if not (len(e) == 2 and -4 <= e[0] <= e[1] <= 4):
            bad.append(f"exposure must be a range lo <= hi within -4..4 stops, got {e!r}")
        if self.defocus[1] > 8 or self.motion_blur[1] > 16 or self.vignette[1] > 0.9:
            bad.append(
                "defocus <= 8 units, motion_blur <= 16 units and vignette <= 0.9, got"
                f" {self.defocus!r}, {self.motion_blur!r}, {self.vignette!r}"
            )
        if self.markings not in (CLASSIC, "world"):
            bad.append(f"markings must be 'classic' or 'world', got {self.markings!r}")
        return bad


_DEFAULTS = {f.name: f.default for f in fields(Variation)}
DEFAULT = Variation()

# The world real rigs show, at real proportions: every package, tip make, reticle, tape, pad
# shape and board, parts standing or lifted past 60 degrees or lying up to 10, cameras at any
# roll, defocused, streaked, from dim to blown, vignetted, 40% of frames through JPEG. Each list
# keeps its classic look (from one pick in two for boards to one in seventeen for packages), so
# a model trained on it keeps the generator's own families. Drawn at most 240 pixels high and
# resized once: at the trainer's sizes a frame costs about what a default one does on average
# (docs/evaluation.md has the figures).
WORLD = Variation(
    shift=(0.0, 28.0),
    tip_radius=(6.0, 50.0),
    tip_styles=("metallic", "disc", "ring", "gradient"),
    centred=(0.0, 3.0),
    off=(12.0, 40.0),
    harshness=(0.8, 1.3),
    jpeg_quality=(25, 95),
    jpeg_share=0.4,
    nozzles=NOZZLE_MAKES,
    reticles=RETICLES,
    packages=PACKAGES,
    tapes=TAPES,
    pads=PAD_SHAPES,
    boards=BOARDS,
    standing_tilt=(STANDING_MIN, 90.0),
    flat_tilt=(0.0, FLAT_MAX),
    canvas=240,
    rotation=(0.0, 180.0),
    defocus=(0.0, 1.6),
    motion_blur=(0.0, 5.0),
    exposure=(-1.2, 1.0),
    vignette=(0.0, 0.6),
    markings="world",
)
# Camera sizes of every common aspect ratio (4:3, 16:9, 5:4, 3:2, 1:1, 2:1 and portrait), small
# ones more often: a trainer's `Recipe.sizes` for the world (weights in WORLD_SIZE_WEIGHTS).
WORLD_SIZES = (
    (160, 120), (224, 168), (240, 240), (320, 240), (300, 200), (400, 200), (240, 320),
    (480, 270), (640, 512), (640, 480), (800, 600), (1280, 720), (1920, 1080),
)  # fmt: skip
WORLD_SIZE_WEIGHTS = (4.0, 2.0, 1.0, 4.0, 1.0, 0.5, 0.5, 2.0, 0.5, 2.0, 0.4, 0.6, 0.3)
