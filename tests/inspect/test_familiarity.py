"""Familiarity: the statistic itself, and answers from a folder that carries one.

The trained inspector (models/pnp-inspector) is copied and given a statistic fitted on a few
dozen generated nozzle views; generated views of the same look must score familiar, views of
a look it never saw (a photo-like random texture, colours inverted) unfamiliar, and those are
never confident.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.synthetic import render
from pnp_vision.errors import ConfigError, Unfamiliar
from pnp_vision.inspect import Inspector, Question, TemplateSet
from pnp_vision.inspect.familiarity import (
    BANKS_FILE,
    FAMILIARITY_FILE,
    Familiarity,
    coreset,
    fit_template,
    nearest_distances,
    write_familiarity,
)
from pnp_vision.teach.familiarity_fit import fit_familiarity

NOZZLE = "nozzle_alignment"


def test_coreset_keeps_a_rare_cluster_that_random_sampling_would_miss() -> None:
    rng = np.random.default_rng(0)
    common = rng.normal(0, 1, (2000, 8)).astype(np.float32)
    rare = rng.normal(20, 0.1, (3, 8)).astype(np.float32)  # 3 tokens in 2003
    bank = coreset(np.concatenate([common, rare]), 64)
    assert len(bank) == 64
    assert nearest_distances(rare, bank).max() < 1.0  # covered by a pick of its own
    assert coreset(common[:10], 64).shape == (10, 8)  # fewer tokens than asked: all of them


def test_threshold_is_the_heldout_quantile_and_survives_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train = [rng.normal(0, 1, (12, 16)).astype(np.float32) for _ in range(50)]
    heldout = [rng.normal(0, 1, (12, 16)).astype(np.float32) for _ in range(200)]
    bank, threshold, record = fit_template(train, heldout, bank_size=128, quantile=0.9)
    scores = sorted(float(nearest_distances(v, bank).max()) for v in heldout)
    assert scores[int(0.85 * len(scores))] <= threshold <= scores[int(0.95 * len(scores))]
    assert record["bank_tokens"] == 128 and record["heldout_views"] == 200
    write_familiarity(tmp_path, {"a": (bank, threshold, record)})
    loaded = Familiarity.load(tmp_path)
    assert loaded.thresholds["a"] == pytest.approx(threshold, rel=1e-5)
    inside = sum(loaded.relative_score("a", v) <= 1.0 for v in heldout)
    assert 170 <= inside <= 190  # 90% of held-out views, within the float16 rounding
    far = rng.normal(5, 1, (12, 16)).astype(np.float32)
    assert loaded.relative_score("a", far) > 2.0
    assert loaded.relative_score("b", far) is None  # no statistic: says nothing
    with pytest.raises(ConfigError, match="another model"):
        loaded.relative_score("a", far[:, :8])
    # a refit of one template keeps the others
    write_familiarity(tmp_path, {"b": (bank, threshold * 2, record)})
    both = Familiarity.load(tmp_path)
    assert set(both.banks) == {"a", "b"}
    assert both.thresholds["a"] == pytest.approx(threshold, rel=1e-5)


def test_a_broken_statistic_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / FAMILIARITY_FILE).write_text(json.dumps({"templates": {"a": {"threshold": 1}}}))
    with pytest.raises(ConfigError, match="invalid familiarity"):
        Familiarity.load(tmp_path)  # no banks file
    np.savez(tmp_path / BANKS_FILE, a=np.zeros((0, 4), np.float16))
    with pytest.raises(ConfigError, match="empty bank"):
        Familiarity.load(tmp_path)


def _nozzle_frames(seed: int, n: int) -> list[np.ndarray]:
    return [render(i, seed, (320, 240), scenes=["nozzle_tip"])[0] for i in range(n)]


def _strange(seed: int) -> np.ndarray:
    """A look nothing was trained on: coarse coloured blocks, inverted grey."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 40, axis=0), 40, axis=1)


@pytest.fixture(scope="module")
def familiar_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fam") / "model"
    shutil.copytree(PROJECT_ROOT / "models" / "pnp-inspector", folder)
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    train = [(NOZZLE, f) for f in _nozzle_frames(501, 60)]
    heldout = [(NOZZLE, f) for f in _nozzle_frames(502, 40)]
    records = fit_familiarity(folder, templates, train, heldout, about={"test": True})
    assert set(records) == {NOZZLE}
    return folder


def test_answers_say_whether_the_view_is_familiar(familiar_folder: Path) -> None:
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    inspector = Inspector(familiar_folder, templates)
    ask = [Question(template=NOZZLE), Question(template="tombstone")]
    known = [inspector.inspect(f, ask) for f in _nozzle_frames(503, 20)]
    assert sum(r[0].familiar for r in known) >= 17  # in-look views: ~99% by construction
    for nozzle, tombstone in known:
        assert nozzle.familiarity is not None and nozzle.familiarity >= 0
        assert tombstone.familiar is None and tombstone.familiarity is None  # no statistic
    for seed in range(5):
        nozzle, tombstone = inspector.inspect(_strange(seed), ask)
        assert nozzle.familiar is False and nozzle.familiarity > 1.0
        assert nozzle.confident is False  # whatever its probability
    refusing = Inspector(familiar_folder, templates, refuse_unfamiliar=True)
    with pytest.raises(Unfamiliar, match="nozzle_alignment"):
        refusing.inspect(_strange(0), ask)
    assert refusing.inspect(_nozzle_frames(503, 1)[0], ask)[0].familiar is not None


def test_a_folder_without_a_statistic_says_nothing(inspectors: dict[str, Inspector]) -> None:
    inspector = inspectors["qwen2_5_vl"]  # a tiny random model folder: no familiarity files
    (result,) = inspector.inspect(_strange(1), [Question(template=NOZZLE)])
    assert result.familiar is None and result.familiarity is None
