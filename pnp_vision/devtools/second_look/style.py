"""`Style`: what a family (or a rig) lets its frames look like. Scenes draw within it.

A family widens one thing at a time (rotation, defocus, exposure, ...) over the same base; a
rig narrows every look choice to one value, so only the scene's content changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pnp_vision.devtools.second_look.camera import CameraStyle

Range = tuple[float, float]

SIZES_4_3 = ((640, 480), (800, 600), (1024, 768), (1280, 960))
SIZES_ALL = (
    (320, 240),
    (640, 360),
    (640, 480),
    (752, 480),
    (800, 600),
    (1024, 768),
    (1280, 720),
    (1280, 960),
    (1280, 1024),
    (1440, 1080),
    (1600, 1200),
    (1920, 1080),
)

SCENES = ("nozzle_empty", "nozzle_held", "placed_chip", "tape_pocket", "part_top")
TIPS = ("hex", "tube", "rubber", "ceramic", "stepped", "reflector")
RETICLES = (
    "cross",
    "gap",
    "dashed",
    "ticks",
    "dashed_ticks",
    "circle",
    "double_circle",
    "brackets",
)
RETICLE_COLOURS = ("amber", "cyan", "white", "green", "red", "magenta", "yellow")
BACKDROPS = ("dark", "dark", "machine", "backlit")
TAPES = ("paper_white", "paper_brown", "black_embossed", "clear_embossed", "blue_embossed")
MASKS = ("green", "green", "dark_green", "blue", "black", "red", "white", "purple")


@dataclass(frozen=True)
class Style:
    scenes: tuple[str, ...] = SCENES
    sizes: tuple[tuple[int, int], ...] = SIZES_4_3
    rotation: float = 2.0  # camera turned up to +- this many degrees
    rotation_any: bool = False  # any angle (quarter turns and in between)
    camera: CameraStyle = field(default_factory=CameraStyle)
    texture: Range = (0.4, 1.0)  # board weave, paper fibre, backdrop structure
    # up-looking camera
    tips: tuple[str, ...] = TIPS
    tip_radius: Range = (8.0, 28.0)
    backdrops: tuple[str, ...] = BACKDROPS
    reticles: tuple[str, ...] = RETICLES
    reticle_colours: tuple[str, ...] = RETICLE_COLOURS
    reticle_turns: float = 0.5  # chance a reticle turns with the camera (vs stays level)
    reticle_wander: float = 0.45  # reticle centre up to this share of the ROI off centre;
    # 0: a rig's crosshair, fixed where its look puts it
    packages: tuple[str, ...] = (
        "R0402",
        "R0603",
        "R0805",
        "C0402",
        "C0603",
        "C0805",
        "C1206",
        "SOT23",
        "SOIC8",
        "QFN32",
        "TANT-A",
        "LED0603",
    )
    held_size: Range = (22.0, 75.0)  # largest extent of a held part, units
    # down-looking cameras
    chips: tuple[str, ...] = (
        "R0402",
        "R0603",
        "R0805",
        "R1206",
        "C0402",
        "C0603",
        "C0805",
        "C1206",
    )
    chip_length: Range = (24.0, 80.0)  # a placed two-terminal part's length, units
    masks: tuple[str, ...] = MASKS
    tapes: tuple[str, ...] = TAPES
    pitch_units: Range = (34.0, 70.0)  # feeder pocket pitch, units
    rig: str | None = None  # a rig: the look is drawn from a stream fixed by this name
