"""Synthetic pick-and-place frames with the true answer of every template they show.

Used for the bundled demo recording, tests, benchmarks and for training tiny models. Frame ``i``
of seed ``s`` is drawn from its own random stream (``default_rng([s, i])``; a frame that hides
the only cue it asks about is drawn again from ``[s, i, k]``), so any frame can be reproduced
alone, and the output does not depend on how many frames were asked for.

Scenes (``SCENES``) cycle so every one appears equally often; within a scene the answer is a fair
coin, so YES and NO are balanced per template. Labels::

    {"scene": "chip", "questions": [{"template": "polarity_mark",
                                     "params": {"corner": "top_left"}, "answer": "YES"}, ...]}

A `Variation` with any world knob on (``WORLD``: all of them) draws real parts, tips, tapes and
pads in millimetres through the world camera (``synthetic_camera.shoot``); the world scenes
live in ``synthetic_nozzle``, ``synthetic_board`` and ``synthetic_feeder``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from pnp_vision.devtools import synthetic_board, synthetic_feeder, synthetic_nozzle
from pnp_vision.devtools import synthetic_camera as camera
from pnp_vision.devtools.marking_view import ask_where_seen
from pnp_vision.devtools.synthetic_marking import CORNERS, chip, random_marking
from pnp_vision.devtools.synthetic_scenes import (
    CENTRED_MAX,
    DEFAULT,
    OFF_MIN,
    TIP_STYLES,
    Scene,
    Variation,
    feeder_pocket,
    nozzle_tip,
    part_held,
    tombstone,
)
from pnp_vision.devtools.synthetic_variation import WORLD, WORLD_SIZE_WEIGHTS, WORLD_SIZES
from pnp_vision.errors import BadRequest

__all__ = [
    "CENTRED_MAX",
    "CORNERS",
    "DEFAULT",
    "OFF_MIN",
    "SCENES",
    "TIP_STYLES",
    "WORLD",
    "WORLD_SIZES",
    "WORLD_SIZE_WEIGHTS",
    "Variation",
    "generate",
    "random_marking",
    "render",
    "write_synthetic_recording",
]

Lighting = Literal["varied", "even"]
LABELS_NAME = "labels.jsonl"
# A world chip frame drawn for its corner cue alone (its marking too small to read) that does
# not show the cue asks nothing: it is drawn again, from [seed, index, k], up to this often
REDRAWS = 4

SCENES: dict[str, Scene] = {
    "nozzle_tip": nozzle_tip,
    "part_held": part_held,
    "chip": chip,
    "tombstone": tombstone,
    "feeder_pocket": feeder_pocket,
}
# The scenes the world knobs redraw (a world frame of another scene is its classic drawing
# through the world camera, never turned: a corner named "top left" must stay top left).
WORLD_SCENES = {
    "nozzle_tip": synthetic_nozzle.nozzle_tip,
    "part_held": synthetic_nozzle.part_held,
    "tombstone": synthetic_board.tombstone,
    "feeder_pocket": synthetic_feeder.feeder_pocket,
}


def _balanced_yes(index: int, seed: int, n_scenes: int) -> bool:
    """The main answer of a scene occurrence: each consecutive pair of one scene holds one YES
    and one NO, in a random order, so any stream is balanced to within one frame per scene."""
    k = index // n_scenes
    first_yes = np.random.default_rng([seed, index % n_scenes, k // 2, 0xBA1]).random() < 0.5
    return bool(first_yes if k % 2 == 0 else not first_yes)


def render(
    index: int,
    seed: int = 0,
    size: tuple[int, int] = (224, 224),
    *,
    lighting: Lighting = "varied",
    blur: bool = True,
    noise: float = 5.0,
    scenes: Sequence[str] | None = None,
    variation: Variation = DEFAULT,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Frame ``index`` of ``seed``'s stream: (BGR uint8 image of ``size`` = (w, h), labels).

    ``noise`` is the largest Gaussian sensor-noise sigma (each frame draws up to it); noise
    is what makes PNGs big, so recordings kept in the repository use a low value.
    ``variation`` widens or moves the scene ranges (families of frames for evaluation and
    the training recipe); its defaults draw exactly the original frames. A world frame's
    labels also carry ``drawn``: where the scene drew what its answers are about, in frame
    pixels (and the tilt, pitch, pockets' contents), which the tests check the labels against.
    """
    names = _check(size, lighting, noise, scenes, variation)
    scene = names[index % len(names)]
    yes = _balanced_yes(index, seed, len(names))
    for redraw in range(REDRAWS + 1):
        rng = np.random.default_rng([seed, index, redraw] if redraw else [seed, index])
        drawn = None
        if variation.world:
            image, questions, drawn = _shoot_world(scene, rng, size, yes, variation, lighting,
                                                   blur, noise)  # fmt: skip
        else:
            image, questions = _draw_classic(scene, rng, size, yes, variation, lighting, blur,
                                             noise)  # fmt: skip
        asked = ask_where_seen(image, questions)  # a corner cue: only where the frame shows it
        if asked or not questions:
            break
    questions = asked
    geometry = {q["template"]: q.pop("offset") for q in questions if "offset" in q}
    points = {q["template"]: q.pop("points") for q in questions if "points" in q}
    label = {"scene": scene, "questions": questions, "geometry": geometry, "points": points}
    if drawn is not None:  # what a world scene drew, in frame pixels (tests check labels on it)
        label["drawn"] = drawn
    return image, label


def _draw_classic(
    scene: str, rng: np.random.Generator, size: tuple[int, int], yes: bool, variation: Variation,
    lighting: Lighting, blur: bool, noise_sigma: float,
) -> tuple[np.ndarray, list[dict[str, Any]]]:  # fmt: skip
    """The generator's original drawing: the scene at full size, light, blur, noise, JPEG."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    questions = SCENES[scene](img, rng, min(w, h) / 224.0, yes, variation)
    lo, hi = variation.harshness
    harsh = lo if lo == hi else rng.uniform(lo, hi)
    out = camera.light(img, rng, harsh) if lighting == "varied" else img.astype(np.float32)
    if blur and rng.random() < 0.7:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.2) * min(w, h) / 224.0)
    if noise_sigma > 0:
        out = cv2.scaleAdd(camera.noise(out.shape, rng), rng.uniform(0.1, 1.0) * noise_sigma, out)
    image = np.clip(out + 0.5, 0, 255, out=out).astype(np.uint8)
    return camera.jpeg(image, rng, variation), questions  # a JPEG camera stream: blocks and ringing


def _shoot_world(
    scene: str, rng: np.random.Generator, size: tuple[int, int], yes: bool, variation: Variation,
    lighting: Lighting, blur: bool, noise_sigma: float,
) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """A frame of the world knobs: the scene drawn by its world module (or its classic
    drawing, for a scene without one) through the world camera."""
    world = WORLD_SCENES.get(scene)

    def draw(canvas: np.ndarray, u: float, shot: Any) -> list[dict[str, Any]]:
        if world is not None:
            return world(canvas, rng, u, yes, variation, shot)
        return SCENES[scene](canvas, rng, u, yes, variation)

    return camera.shoot(
        draw, size, rng, variation, lighting=lighting == "varied", blur=blur,
        noise_sigma=noise_sigma, rotate=world is not None,
    )  # fmt: skip


def generate(
    n: int,
    seed: int = 0,
    size: tuple[int, int] = (224, 224),
    *,
    lighting: Lighting = "varied",
    blur: bool = True,
    noise: float = 5.0,
    scenes: Sequence[str] | None = None,
    start: int = 0,
    variation: Variation = DEFAULT,
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """``n`` frames (``start`` .. ``start + n - 1``) with their labels; see :func:`render`."""
    if n < 0:
        raise BadRequest(f"n must be >= 0, got {n}")
    _check(size, lighting, noise, scenes, variation)
    for i in range(start, start + n):
        yield render(
            i, seed, size, lighting=lighting, blur=blur, noise=noise, scenes=scenes,
            variation=variation,
        )  # fmt: skip


@functools.lru_cache(maxsize=64)
def _problems(variation: Variation) -> tuple[str, ...]:
    """`variation.check()`, once per variation (frames of one family are drawn by the
    thousand)."""
    return tuple(variation.check())


def _check(
    size: tuple[int, int],
    lighting: str,
    noise: float,
    scenes: Sequence[str] | None,
    variation: Variation = DEFAULT,
) -> list[str]:
    if len(size) != 2 or not all(isinstance(v, int) and 32 <= v <= 4096 for v in size):
        raise BadRequest(f"size must be (width, height) with each in 32..4096, got {size!r}")
    if not 0 <= noise <= 50:
        raise BadRequest(f"noise (max sigma) must be in 0..50, got {noise!r}")
    if lighting not in ("varied", "even"):
        raise BadRequest(f"lighting must be 'varied' or 'even', got {lighting!r}")
    names = list(scenes) if scenes else list(SCENES)
    unknown = [s for s in names if s not in SCENES]
    if unknown:
        raise BadRequest(f"unknown scene(s) {unknown}; known: {sorted(SCENES)}")
    problems = _problems(variation)
    if problems:
        raise BadRequest("; ".join(problems))
    return names


def write_synthetic_recording(
    folder: Path,
    n: int,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    *,
    camera: str = "demo",
    fps: float = 10.0,
    lighting: Lighting = "varied",
    noise: float = 0.6,
    png_level: int = 9,
    variation: Variation = DEFAULT,
    scenes: Sequence[str] | None = None,
) -> int:
    """Write a recording folder (PNG frames, ``index.jsonl``, ``labels.jsonl``) for replay."""
    from pnp_vision.capture.recording import RecordingWriter
    from pnp_vision.protocol.frames import FrameHeader

    folder = Path(folder)
    t0 = 1_700_000_000.0  # fixed, so a regenerated recording is byte-identical
    with (
        RecordingWriter(folder, png_level=png_level) as writer,
        open(folder / LABELS_NAME, "w") as labels,
    ):
        for seq, (image, label) in enumerate(
            generate(
                n, seed, size, lighting=lighting, noise=noise, variation=variation, scenes=scenes
            )
        ):
            header = FrameHeader(
                camera=camera,
                session=f"synthetic-seed{seed}",
                seq=seq,
                capture_time=t0 + seq / fps,
                width=size[0],
                height=size[1],
            )
            name = writer.write(header, image, name=f"{seq:06d}-{label['scene']}.png")
            row = {
                "seq": seq,
                "file": name,
                "scene": label["scene"],
                # the label file holds what `eval` reads; drawing details (a marking's lines, a
                # negative's kind) stay with the generator
                "questions": [
                    {k: q[k] for k in ("template", "params", "answer")} for q in label["questions"]
                ],
            }
            labels.write(json.dumps(row) + "\n")
    return n
