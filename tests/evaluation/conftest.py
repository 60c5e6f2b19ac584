"""Evaluation fixtures: the shipped trained model and held-out synthetic recordings.

The held-out frames are generated here with a seed (and so lighting, positions, colours) that
training never saw: training draws frames of seed 0, 1, ... with `synthetic.render`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pnp_vision.config import PROJECT_ROOT

TRAINED_MODEL = PROJECT_ROOT / "models" / "pnp-inspector"
HELDOUT_SEED = 424_242
EVEN_LIGHT_SEED = 777


@pytest.fixture(scope="session")
def trained_model() -> Path:
    if not (TRAINED_MODEL / "training.json").is_file():
        pytest.fail(f"no trained model at {TRAINED_MODEL}: run python -m pnp_vision.devtools.train")
    return TRAINED_MODEL


@pytest.fixture(scope="session")
def learned(trained_model: Path) -> list[str]:
    """The templates the shipped model learned: >= 95% on unseen frames when it was trained."""
    names = list(json.loads((trained_model / "training.json").read_text())["learned_templates"])
    assert names, "the shipped model learned no template"
    return names


@pytest.fixture(scope="session")
def heldout_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 frames (20 of each scene) of an unseen seed, written as a normal recording folder."""
    from pnp_vision.devtools.synthetic import write_synthetic_recording

    folder = tmp_path_factory.mktemp("heldout") / "recording"
    write_synthetic_recording(folder, 100, seed=HELDOUT_SEED, size=(320, 240), noise=3.0)
    return folder


@pytest.fixture(scope="session")
def even_light_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 frames of another unseen seed under even lighting (training always varies it)."""
    from pnp_vision.devtools.synthetic import write_synthetic_recording

    folder = tmp_path_factory.mktemp("even-light") / "recording"
    write_synthetic_recording(
        folder, 100, seed=EVEN_LIGHT_SEED, size=(320, 240), noise=3.0, lighting="even"
    )
    return folder
