"""Shared fixtures: the shipped templates and the tiny model folders (built once, cached)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pnp_vision.config import PROJECT_ROOT


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module imports mlx: OpenBLAS for MLX on the CPU, and no hub access."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()


@pytest.fixture(scope="session")
def prompts_dir() -> Path:
    return PROJECT_ROOT / "prompts"


@pytest.fixture(scope="session")
def tiny_model_dir() -> Callable[[str], Path]:
    """`tiny_model_dir("qwen2_5_vl" | "mllama")` -> a cached tiny model folder."""
    from pnp_vision.devtools.tiny_models import ensure_tiny_model

    return ensure_tiny_model


@pytest.fixture(scope="session")
def nozzle_views() -> Callable[[int, int], list]:
    """`nozzle_views(seed, n)` -> n generated nozzle frames as labelled nozzle_alignment views,
    `(Question, image, answer)`: what a familiarity statistic is fitted on."""
    from pnp_vision.devtools.synthetic import render
    from pnp_vision.inspect import Question

    def views(seed: int, n: int) -> list:
        out = []
        for i in range(n):
            image, label = render(i, seed, (320, 240), scenes=["nozzle_tip"])
            (answer,) = (q["answer"] for q in label["questions"] if q["template"] == NOZZLE)
            out.append((Question(template=NOZZLE), image, answer))
        return out

    return views


NOZZLE = "nozzle_alignment"
