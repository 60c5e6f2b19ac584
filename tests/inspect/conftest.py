"""Inspector fixtures: each tiny model is loaded once per session, on the main thread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pnp_vision.inspect import Inspector, TemplateSet

KINDS = ("qwen2_5_vl", "mllama")


@pytest.fixture(scope="session")
def templates(prompts_dir: Path) -> TemplateSet:
    return TemplateSet.load(prompts_dir)


@pytest.fixture(scope="session")
def inspectors(tiny_model_dir, templates) -> dict[str, Inspector]:
    return {kind: Inspector(tiny_model_dir(kind), templates) for kind in KINDS}


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def inspector(inspectors, kind) -> Inspector:
    return inspectors[kind]


@pytest.fixture(scope="session")
def make_frame():
    """`make_frame(seed, height=96, width=128)` -> a deterministic BGR uint8 test frame."""
    return _frame


def _frame(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    """Gradient + noise + a bright disc, so different seeds give clearly different images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([(xx * 2) % 256, (yy * 2) % 256, (xx + yy) % 256], axis=2).astype(np.int16)
    img += rng.integers(-30, 30, img.shape)
    cy, cx = rng.integers(20, height - 20), rng.integers(20, width - 20)
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < 150] = (220, 220, 220)
    return img.clip(0, 255).astype(np.uint8)
