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
