"""One frame of the second look: scene, then camera (optics, light, sensor, overlay, JPEG).

Frame `index` of `seed` in stream `stream` (a family's or a rig's name) draws from its own
generator, seeded by (seed, stream, index): any frame can be made alone, in any order, and the
same triple always gives the same pixels.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from pnp_vision.devtools.second_look import board, feeder, marking, nozzle
from pnp_vision.devtools.second_look.camera import draw_camera, encode, expose, optics
from pnp_vision.devtools.second_look.canvas import Canvas
from pnp_vision.devtools.second_look.shots import Ctx, Draft, Question, pick
from pnp_vision.devtools.second_look.style import Style

SCENES: dict[str, Callable[[Ctx], Draft]] = {
    "nozzle_empty": nozzle.nozzle_empty,
    "nozzle_held": nozzle.nozzle_held,
    "placed_chip": board.placed_chip,
    "tape_pocket": feeder.tape_pocket,
    "part_top": marking.part_top,
}


@dataclass
class Frame:
    scene: str
    image: Image.Image  # RGB, the camera's size
    questions: list[Question]
    truth: dict[str, Any] = field(default_factory=dict)
    canvas: Canvas | None = None  # the drawn scene with its masks (track=True only)


def stream_key(name: str) -> int:
    return zlib.crc32(name.encode())


def rotation_of(style: Style, rng: np.random.Generator) -> float:
    if style.rotation_any:
        if rng.random() < 0.5:
            return float(rng.uniform(-180, 180))
        return 90.0 * int(rng.integers(4)) + float(rng.uniform(-8, 8))
    return float(rng.uniform(-style.rotation, style.rotation))


def render_frame(
    style: Style, seed: int, stream: str, index: int, *, track: bool = False, scene: str = ""
) -> Frame:
    """Frame `index`: scenes take turns, and each scene's main answer alternates YES / NO."""
    rng = np.random.default_rng([seed, stream_key(stream), index])
    look_rng = np.random.default_rng([stream_key(f"rig:{style.rig}")]) if style.rig else rng
    size = pick(look_rng, style.sizes)
    rotation = rotation_of(style, look_rng)
    camera = draw_camera(style.camera, look_rng)
    n = len(style.scenes)
    scene = scene or style.scenes[index % n]
    ctx = Ctx(style, size, rotation, rng, look_rng, want_yes=(index // n) % 2 == 0, track=track)
    draft = SCENES[scene](ctx)
    image = draft.canvas.finish()
    image = optics(image, camera, min(size) / 224.0)
    image = expose(image, camera, rng)
    if draft.overlay is not None:
        draft.overlay(image)
    image = encode(image, camera)
    truth = {**draft.truth, "size": size, "rotation": rotation, "camera": camera}
    return Frame(draft.scene, image, draft.questions, truth, draft.canvas if track else None)
