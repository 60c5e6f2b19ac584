"""Familiarity: the statistics themselves, and answers from a folder that carries them.

The trained inspector (models/pnp-inspector) is copied and given a statistic fitted on a few
dozen generated nozzle views; generated views of the same look must score familiar, views of
a look it never saw (coarse coloured blocks) unfamiliar, and those are never confident.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import ConfigError, Unfamiliar
from pnp_vision.inspect import Inspector, Question, TemplateSet
from pnp_vision.inspect.familiarity import (
    ARRAYS_FILE,
    FAMILIARITY_FILE,
    Familiarity,
    Statistic,
    coreset,
    fit_bank,
    fit_state,
    nearest_distances,
    state_score,
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


def test_answer_state_distance_is_to_the_nearest_answer() -> None:
    rng = np.random.default_rng(2)
    shift = np.array([5.0, 0, 0, 0, 0, 0])
    yes = rng.normal(0, 1, (300, 6)) + shift
    no = rng.normal(0, 1, (300, 6)) - shift
    states = [*yes, *no]
    answers = ["YES"] * 300 + ["NO"] * 300
    held = list(rng.normal(0, 1, (50, 6)) + shift)
    means, precision, bar = fit_state(states, answers, held, 0.9)
    assert means.shape == (2, 6) and precision.shape == (6, 6)
    # a state at either answer's mean is at distance ~0; between them (the model unsure which
    # answer it is reading) far from both; the bar sits among held-out in-look distances
    assert state_score(np.float32([5, 0, 0, 0, 0, 0]), means, precision) < 0.5
    assert state_score(np.float32([-5, 0, 0, 0, 0, 0]), means, precision) < 0.5
    assert state_score(np.float32([0, 0, 0, 0, 0, 0]), means, precision) > 1.5 * bar
    assert 2.0 < bar < 4.0  # the 90th percentile of a 6-D chi distance is ~3.3


def test_thresholds_are_heldout_quantiles_and_survive_the_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train = [rng.normal(0, 1, (12, 16)).astype(np.float32) for _ in range(50)]
    heldout = [rng.normal(0, 1, (12, 16)).astype(np.float32) for _ in range(200)]
    bank, bar = fit_bank(train, heldout, 0.9, 128)
    scores = sorted(float(nearest_distances(v, bank).max()) for v in heldout)
    assert scores[int(0.85 * len(scores))] <= bar <= scores[int(0.95 * len(scores))]
    states = [rng.normal(0, 1, 4).astype(np.float32) for _ in range(100)]
    means, precision, state_bar = fit_state(states, ["YES", "NO"] * 50, states[:40], 0.9)
    stat = Statistic(bank, bar, means, precision, state_bar)
    write_familiarity(tmp_path, (1, 2, 3, 4), {"a": (stat, {"note": 1})})
    loaded = Familiarity.load(tmp_path)
    assert loaded.probes == (1, 2, 3, 4) and loaded.wants_state("a")
    inside = sum(loaded.relative_score("a", v) <= 1.0 for v in heldout)
    assert 170 <= inside <= 190  # 90% of held-out views, within the float16 rounding
    far = rng.normal(5, 1, (12, 16)).astype(np.float32)
    assert loaded.relative_score("a", far) > 2.0
    odd_state = np.float32([9, 9, 9, 9])
    assert loaded.relative_score("a", heldout[0], odd_state) > 2.0  # the larger score counts
    assert loaded.relative_score("b", far) is None  # no statistic: says nothing
    with pytest.raises(ConfigError, match="another model"):
        loaded.relative_score("a", far[:, :8])
    # a refit of one template keeps the others; other probes cannot join them
    write_familiarity(tmp_path, (1, 2, 3, 4), {"b": (Statistic(bank, bar * 2), {})})
    both = Familiarity.load(tmp_path)
    assert set(both.templates) == {"a", "b"} and not both.wants_state("b")
    assert both.templates["a"].state_threshold == pytest.approx(state_bar, rel=1e-5)
    with pytest.raises(ConfigError, match="probe"):
        write_familiarity(tmp_path, (5, 6, 7, 8), {"c": (stat, {})})


def test_a_broken_statistic_is_a_config_error(tmp_path: Path) -> None:
    meta = {"probes": [], "templates": {"a": {"bank_threshold": 1}}}
    (tmp_path / FAMILIARITY_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="invalid familiarity"):
        Familiarity.load(tmp_path)  # no arrays file
    np.savez(tmp_path / ARRAYS_FILE, **{"a/bank": np.zeros((0, 4), np.float16)})
    with pytest.raises(ConfigError, match="empty statistic"):
        Familiarity.load(tmp_path)


def _strange(seed: int) -> np.ndarray:
    """A look nothing was trained on: coarse coloured blocks."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 40, axis=0), 40, axis=1)


@pytest.fixture(scope="module")
def familiar_folder(tmp_path_factory: pytest.TempPathFactory, nozzle_views) -> Path:
    folder = tmp_path_factory.mktemp("fam") / "model"
    shutil.copytree(  # the shipped statistic (and adapters) left out: the nozzle check's here
        PROJECT_ROOT / "models" / "pnp-inspector",
        folder,
        ignore=shutil.ignore_patterns(FAMILIARITY_FILE, ARRAYS_FILE, "adapters"),
    )
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    records = fit_familiarity(folder, templates, nozzle_views(501, 60), nozzle_views(502, 40))
    assert set(records) == {NOZZLE} and records[NOZZLE]["answers"] == ["NO", "YES"]
    return folder


def test_answers_say_whether_the_view_is_familiar(familiar_folder: Path, nozzle_views) -> None:
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    inspector = Inspector(familiar_folder, templates)
    assert inspector.familiarity.wants_state(NOZZLE) and inspector.probes
    ask = [Question(template=NOZZLE), Question(template="tombstone")]
    known = [inspector.inspect(image, ask) for _, image, _ in nozzle_views(503, 20)]
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
    assert refusing.inspect(nozzle_views(503, 1)[0][1], ask)[0].familiar is not None


def test_the_answer_state_is_the_probe_logits_of_the_answer(
    familiar_folder: Path, nozzle_views
) -> None:
    """What familiarity scores is what answers: the probe tokens' logits at the answer
    position equal the full vocabulary's there (the plain KV-cache pass computes them all)."""
    import mlx.core as mx

    inspector = Inspector(familiar_folder, TemplateSet.load(PROJECT_ROOT / "prompts"))
    question, image, _ = nozzle_views(504, 1)[0]
    ((tokens, state),) = inspector.answer_features(image, [question])
    assert tokens.ndim == 2 and state.shape == (len(inspector.probes),)
    adapter = inspector.adapter
    t = inspector.templates.get(NOZZLE)
    from pnp_vision.inspect import imageprep

    view = imageprep.prepare(
        imageprep.decode(image), template_roi=t.roi, max_pixels=t.max_pixels, keep_array=True,
        view_size=t.view,
    )  # fmt: skip
    inputs = adapter.preprocess(view, t.max_pixels)
    adapter.encode(inputs)
    ids = adapter.expand_image(inspector._prompt_ids(t.system, t.render({})), inputs)
    hidden = adapter.forward(adapter.new_cache(), ids, inputs)
    logits = adapter.logits(hidden[:, -1:, :])[0, 0].astype(mx.float32)
    want = np.array(logits[mx.array(inspector.probes)])
    assert np.allclose(state, want, atol=2e-3), np.abs(state - want).max()


def test_a_folder_without_a_statistic_says_nothing(inspectors: dict[str, Inspector]) -> None:
    inspector = inspectors["qwen2_5_vl"]  # a tiny random model folder: no familiarity files
    (result,) = inspector.inspect(_strange(1), [Question(template=NOZZLE)])
    assert result.familiar is None and result.familiarity is None


def test_the_shipped_folder_knows_its_own_look() -> None:
    """models/pnp-inspector carries a statistic for each learned template: its own look's
    frames are familiar (about 99% by construction), a look it never saw is not. Opened as the
    worker opens it: a template with its own weights adapter answers, and is judged, with it."""
    from pnp_vision.devtools.synthetic import render
    from pnp_vision.inspect.adapters import open_inspector

    inspector = open_inspector(
        PROJECT_ROOT / "models" / "pnp-inspector", TemplateSet.load(PROJECT_ROOT / "prompts")
    )
    learned = set(inspector.calibration.learned or ())
    assert learned and all(inspector.familiarity.knows(t) for t in learned)
    answers = []
    for i in range(24):
        image, label = render(i, 31_337, (320, 240))
        qs = [Question(template=q["template"], params=q["params"]) for q in label["questions"]]
        answers += [r for r in inspector.inspect(image, qs) if r.template in learned]
    assert answers and sum(bool(r.familiar) for r in answers) >= 0.9 * len(answers)
    for seed in range(5):
        nozzle, tombstone = inspector.inspect(
            _strange(seed), [Question(template=NOZZLE), Question(template="tombstone")]
        )
        assert tombstone.familiar is False and not tombstone.confident
        # the nozzle check's adapter was fitted on the world's wider look: coarse blocks sit
        # near its bar (0.9-1.2 of it), and it is never confident on them
        assert nozzle.familiarity > 0.8 and not nozzle.confident
