"""What a scene is given (`Ctx`) and what it hands back (`Draft`): the scenes' one contract.

A scene draws its content with `ctx.rng` (the frame's own stream) and its look with
`ctx.look_rng` (the frame's stream in a family; a stream fixed by the rig's name in a rig, so
every frame of a rig has the same tip, reticle, board and light). It returns the drawn canvas,
its questions with the answers the drawn geometry gives, that geometry (`truth`, in units), and
optionally an overlay drawn after the camera (a software crosshair is not blurred by the lens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from pnp_vision.devtools.second_look.canvas import Canvas
from pnp_vision.devtools.second_look.style import Style

T = TypeVar("T")
Question = tuple[str, dict[str, str], str]  # template, params, answer


@dataclass
class Ctx:
    style: Style
    size: tuple[int, int]
    rotation: float  # camera rotation, degrees
    rng: np.random.Generator  # content
    look_rng: np.random.Generator  # look (fixed per rig)
    want_yes: bool  # the scene's main answer (frames alternate, so families stay balanced)
    track: bool = False  # paint masks for tests

    def canvas(self, background: tuple[int, int, int]) -> Canvas:
        return Canvas(self.size, rotation=self.rotation, background=background, track=self.track)

    def texture(self) -> float:
        return float(self.look_rng.uniform(*self.style.texture))


@dataclass
class Draft:
    scene: str
    canvas: Canvas
    questions: list[Question]
    truth: dict[str, Any] = field(default_factory=dict)
    overlay: Callable[[Image.Image], None] | None = None


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    return items[int(rng.integers(len(items)))]


def uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def roi_half(size: tuple[int, int], roi_fraction: float = 0.5) -> tuple[float, float]:
    """Half extents (units) of what a centred ROI of `roi_fraction` of the frame shows in its
    4:3 view (docs/evaluation.md: the view keeps the ROI's height, takes 4/3 of it as width,
    within the frame): content drawn inside it is inside both the ROI and the view."""
    w, h = size
    wu, hu = w / (min(size) / 224), h / (min(size) / 224)
    half_h = hu * roi_fraction / 2
    return min(wu * roi_fraction / 2, half_h * 4 / 3), half_h
