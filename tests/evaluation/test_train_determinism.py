"""Training is reproducible: the same seed writes the same weights, byte for byte.

The batches come from helper processes that render in parallel; if their order, the reused
batches or the initial weights ever depended on timing, the shipped model could not be rebuilt
from the repository. A few steps of the real recipe (its widths, helpers and batch reuse) show it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from pnp_vision.devtools import train


def _weights_digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path) -> None:
    # reuse_gap=2: steps 3 and 5 re-use earlier batches, as the full run does every odd step.
    cfg = replace(train.TrainConfig(), steps=6, heldout_frames=5, reuse_gap=2, familiarity_frames=8)
    first = train.train(tmp_path / "a", cfg)
    again = train.train(tmp_path / "b", cfg)
    other = train.train(tmp_path / "c", replace(cfg, seed=1))
    assert first["steps"] == again["steps"] == 6
    assert _weights_digest(tmp_path / "a") == _weights_digest(tmp_path / "b")
    assert _weights_digest(tmp_path / "a") != _weights_digest(tmp_path / "c")
    assert first["final_loss"] == again["final_loss"] != other["final_loss"]
    # the held-out check writes the calibration the Inspector reads, the same both times
    calibration = (tmp_path / "a" / "calibration.json").read_text()
    assert calibration == (tmp_path / "b" / "calibration.json").read_text()
    record = json.loads(calibration)
    assert set(record["templates"]) <= set(cfg.templates)
    assert all(t["temperature"] > 0 for t in record["templates"].values())
    assert record["learned_templates"] == first["learned_templates"]
    # and the familiarity statistic: a bank and a threshold per trained template, the same
    for name in ("familiarity.json", "familiarity.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    familiarity = json.loads((tmp_path / "a" / "familiarity.json").read_text())
    assert set(familiarity["templates"]) == set(cfg.templates)
    assert all(t["state_threshold"] > 0 for t in familiarity["templates"].values())
