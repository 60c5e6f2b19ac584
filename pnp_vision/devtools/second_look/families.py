"""The second look's families (one nuisance widened at a time, then all at once) and its rigs
(one look fixed, only the content varies: for teaching a rig and testing it on other frames)."""

from __future__ import annotations

from dataclasses import replace

from pnp_vision.devtools.second_look.camera import CameraStyle
from pnp_vision.devtools.second_look.parts import PACKAGES, TWO_TERMINAL
from pnp_vision.devtools.second_look.style import SIZES_ALL, TAPES, Style

BASE = Style()
ALL_HELD = tuple(sorted(PACKAGES))
CAMERA = CameraStyle()

FAMILIES: dict[str, Style] = {
    "base": BASE,
    "packages": replace(
        BASE,
        packages=ALL_HELD,
        held_size=(14.0, 95.0),
        chips=tuple(TWO_TERMINAL),
        chip_length=(18.0, 95.0),
    ),
    "tapes": replace(BASE, scenes=("tape_pocket",), tapes=TAPES, pitch_units=(28.0, 80.0)),
    "reticles": replace(
        BASE, scenes=("nozzle_empty", "nozzle_held"), rotation=20.0, reticle_turns=0.7
    ),
    "rotated": replace(BASE, rotation_any=True, reticle_turns=0.7),
    "defocus": replace(BASE, camera=replace(CAMERA, defocus=(0.9, 3.0), motion=(0.0, 6.0))),
    "texture": replace(
        BASE, texture=(1.6, 3.0), backdrops=("machine", "machine", "backlit", "dark")
    ),
    "dim": replace(
        BASE,
        camera=replace(
            CAMERA,
            exposure=(0.1, 0.4),
            noise=(2.0, 6.0),
            field_strength=(0.3, 0.7),
            vignette=(0.2, 0.5),
        ),
    ),
    "jpeg": replace(BASE, camera=replace(CAMERA, jpeg=(12.0, 55.0))),
    "sizes": replace(BASE, sizes=SIZES_ALL),
    "mixed": replace(
        BASE,
        sizes=SIZES_ALL,
        rotation_any=True,
        reticle_turns=0.7,
        packages=ALL_HELD,
        held_size=(14.0, 95.0),
        chips=tuple(TWO_TERMINAL),
        chip_length=(18.0, 95.0),
        texture=(0.4, 2.6),
        pitch_units=(28.0, 80.0),
        camera=replace(
            CAMERA,
            defocus=(0.0, 2.0),
            motion=(0.0, 4.0),
            exposure=(0.2, 1.7),
            noise=(0.5, 5.0),
            jpeg=(20.0, 85.0),
            vignette=(0.0, 0.5),
        ),
    ),
}


def _fixed_camera(**kw) -> CameraStyle:
    base = dict(
        defocus=(0.2, 0.2),
        motion=(0.0, 0.0),
        exposure=(1.0, 1.0),
        field_strength=(0.45, 0.45),
        vignette=(0.2, 0.2),
        cast=0.0,
        noise=(1.5, 1.5),
        gamma=(1.0, 1.0),
    )
    return CameraStyle(**{**base, **kw})


RIGS: dict[str, Style] = {
    # issue 32's foreign rig: 1024x768, a dark hexagonal tip with a bright rim, an amber dashed
    # crosshair with tick marks, a ring-light field; every frame an empty nozzle
    "hexrig": Style(
        scenes=("nozzle_empty",),
        sizes=((1024, 768),),
        rotation=0.0,
        tips=("hex",),
        tip_radius=(15.0, 15.0),
        backdrops=("dark",),
        reticles=("dashed_ticks",),
        reticle_colours=("amber",),
        reticle_turns=1.0,
        reticle_wander=0.0,
        texture=(0.8, 0.8),
        camera=_fixed_camera(fields=("ring",)),
        rig="hexrig",
    ),
    # a down-looking placement check: black mask, 0402-0805 capacitors, 1280x720, a spot light
    "tombrig": Style(
        scenes=("placed_chip",),
        sizes=((1280, 720),),
        rotation=0.0,
        chips=("C0402", "C0603", "C0805"),
        chip_length=(44.0, 66.0),
        masks=("black",),
        texture=(0.7, 0.7),
        camera=_fixed_camera(fields=("spot",), field_strength=(0.3, 0.3)),
        rig="tombrig",
    ),
    # a feeder camera: black embossed 8 mm tape, 800x600
    "feedrig": Style(
        scenes=("tape_pocket",),
        sizes=((800, 600),),
        rotation=0.0,
        tapes=("black_embossed",),
        pitch_units=(56.0, 56.0),
        texture=(0.8, 0.8),
        camera=_fixed_camera(fields=("even",)),
        rig="feedrig",
    ),
}
