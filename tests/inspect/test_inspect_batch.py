"""`Inspector.inspect_batch`: several callers' images and questions answered together give what
each gets alone (to float rounding), and one bad call never fails its neighbours.

Qwen2.5-VL batches (one vision pass per patch grid, one batched language pass); mllama cannot
and answers the calls one after another: the same outcomes either way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.synthetic import render
from pnp_vision.errors import BadParams, ImageError, ModelError, Unfamiliar, UnknownTemplate
from pnp_vision.inspect import InspectionResult, Inspector, Question, TemplateSet
from pnp_vision.inspect.engine import BatchCall
from pnp_vision.teach.familiarity_fit import fit_familiarity

NOZZLE = "nozzle_alignment"
# Answers sharing a first token (NO, NOT_SURE): scored on the KV cache, never in the packed pass.
SURE_OR_NOT = """name = "sure_or_not"
description = "test"
question = "Is the nozzle tip centred on the crosshair? Answer YES, NO or NOT_SURE."
answers = ["YES", "NO", "NOT_SURE"]
"""


@pytest.fixture(scope="module")
def batchers(tmp_path_factory, tiny_model_dir) -> dict[str, Inspector]:
    """The tiny models with the shipped templates and `sure_or_not`."""
    extra = tmp_path_factory.mktemp("batch-templates")
    (extra / "sure_or_not.toml").write_text(SURE_OR_NOT)
    templates = TemplateSet.load([PROJECT_ROOT / "prompts", extra])
    return {k: Inspector(tiny_model_dir(k), templates) for k in ("qwen2_5_vl", "mllama")}


@pytest.fixture
def inspector(batchers, kind) -> Inspector:
    return batchers[kind]


def _calls(make_frame) -> list[BatchCall]:
    """Different images, sizes, ROIs, templates and views; one call with several questions
    on two views, one with an answer set scored on the KV cache (shared first token)."""
    return [
        BatchCall(make_frame(6), [Question(template="sure_or_not"), Question(template=NOZZLE)]),
        BatchCall(make_frame(1), [Question(template=NOZZLE)]),
        BatchCall(make_frame(2, 120, 160), [Question(template="tombstone")]),
        BatchCall(
            make_frame(3),
            [
                Question(template="part_marking", params={"marking": "R0603"}),
                Question(template="part_on_nozzle"),
                Question(template="polarity_mark", params={"corner": "top_left"}),
            ],
        ),
        BatchCall(make_frame(4, 240, 320), [Question(template=NOZZLE)], roi=(10, 20, 200, 150)),
        BatchCall(make_frame(5), [Question(template="feeder_pocket_empty")]),
        BatchCall(make_frame(1), [Question(template="part_on_nozzle")]),  # an image twice
    ]


def _alone(inspector: Inspector, call: BatchCall) -> list[InspectionResult]:
    return inspector.inspect(call.image, call.questions, roi=call.roi)


def _same(batched: list[InspectionResult], alone: list[InspectionResult]) -> float:
    """The largest probability difference; everything else must be equal."""
    assert [r.template for r in batched] == [r.template for r in alone]
    worst = 0.0
    for b, a in zip(batched, alone, strict=True):
        assert b.probabilities.keys() == a.probabilities.keys()
        worst = max(worst, *(abs(b.probabilities[k] - a.probabilities[k]) for k in a.probabilities))
        assert (b.question, b.trained, b.familiar) == (a.question, a.trained, a.familiar)
        if abs(b.probabilities[b.answer] - 0.5) > 1e-3:  # a near tie may flip on rounding
            assert (b.answer, b.confident) == (a.answer, a.confident)
        assert b.timings.total_ms >= 0
    return worst


def test_a_batch_answers_as_each_call_alone(inspector: Inspector, make_frame) -> None:
    calls = _calls(make_frame)
    outcomes = inspector.inspect_batch(calls)
    assert len(outcomes) == len(calls)
    for call, outcome in zip(calls, outcomes, strict=True):
        assert not isinstance(outcome, Exception), outcome
        alone = _alone(inspector, call)
        assert _same(outcome, alone) < 1e-5


def test_qwen_batches_vision_and_language_in_shared_passes(batchers, make_frame, monkeypatch):
    inspector = batchers["qwen2_5_vl"]
    adapter = inspector.adapter
    seen: dict[str, list[int]] = {"encode": [], "rows": []}
    real_encode, real_rows = adapter.encode_batch, adapter.batched_logits

    def encode_batch(batch):
        seen["encode"].append(len(batch))
        return real_encode(batch)

    def batched_logits(rows, token_ids):
        seen["rows"].append(len(rows))
        return real_rows(rows, token_ids)

    monkeypatch.setattr(adapter, "encode_batch", encode_batch)
    monkeypatch.setattr(adapter, "batched_logits", batched_logits)
    calls = [BatchCall(make_frame(10 + i), [Question(template=NOZZLE)]) for i in range(5)]
    outcomes = inspector.inspect_batch(calls)
    assert seen == {"encode": [5], "rows": [5]}  # one vision and one language pass
    for call, outcome in zip(calls, outcomes, strict=True):
        assert _same(outcome, _alone(inspector, call)) < 1e-5


def test_one_bad_call_fails_alone(inspector: Inspector, make_frame) -> None:
    good = _calls(make_frame)[:2]
    bad = [
        (BatchCall(b"not an image", [Question(template=NOZZLE)]), ImageError),
        (BatchCall(make_frame(7), [Question(template="no_such_template")]), UnknownTemplate),
        (
            BatchCall(make_frame(8), [Question(template="part_marking", params={"marking": "?"})]),
            BadParams,
        ),
    ]
    calls = [good[0], bad[0][0], bad[1][0], good[1], bad[2][0]]
    outcomes = inspector.inspect_batch(calls)
    for position, (_, kind) in zip((1, 2, 4), bad, strict=True):
        assert isinstance(outcomes[position], kind), outcomes[position]
    for position, call in ((0, good[0]), (3, good[1])):
        assert _same(outcomes[position], _alone(inspector, call)) < 1e-5


def test_a_failing_shared_pass_runs_every_call_again_alone(batchers, make_frame, monkeypatch):
    inspector = batchers["qwen2_5_vl"]

    def broken(rows, token_ids):
        raise RuntimeError("the batched pass broke")

    monkeypatch.setattr(inspector.adapter, "batched_logits", broken)
    calls = _calls(make_frame)[:3]
    outcomes = inspector.inspect_batch(calls)
    for call, outcome in zip(calls, outcomes, strict=True):
        assert _same(outcome, _alone(inspector, call)) < 1e-5


def test_a_failing_cached_pass_fails_only_its_call(batchers, make_frame, monkeypatch):
    """A question scored on the KV cache (answers sharing a first token) that breaks is that
    call's model_error; the batched questions of the others are answered."""
    inspector = batchers["qwen2_5_vl"]
    assert not inspector.answer_plan("sure_or_not").one_pass
    calls = _calls(make_frame)
    cached = [0]  # the call asking sure_or_not
    real = inspector._score_on_cache

    def broken(prefix, members, inputs):
        raise RuntimeError("cache broke")

    monkeypatch.setattr(inspector, "_score_on_cache", broken)
    outcomes = inspector.inspect_batch(calls)
    monkeypatch.setattr(inspector, "_score_on_cache", real)
    for i, (call, outcome) in enumerate(zip(calls, outcomes, strict=True)):
        if i in cached:
            assert isinstance(outcome, ModelError)
        else:
            assert _same(outcome, _alone(inspector, call)) < 1e-5


def _nozzle_frames(seed: int, n: int) -> list[np.ndarray]:
    return [render(i, seed, (320, 240), scenes=["nozzle_tip"])[0] for i in range(n)]


def _strange(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 40, axis=0), 40, axis=1)


@pytest.fixture(scope="module")
def familiar_folder(tmp_path_factory: pytest.TempPathFactory, nozzle_views) -> Path:
    folder = tmp_path_factory.mktemp("fam-batch") / "model"
    shutil.copytree(PROJECT_ROOT / "models" / "pnp-inspector", folder)
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    train, heldout = nozzle_views(601, 40), nozzle_views(602, 30)
    fit_familiarity(folder, templates, train, heldout, about={"test": True})
    return folder


def test_familiarity_and_refusals_are_per_call(familiar_folder: Path) -> None:
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    ask = [Question(template=NOZZLE), Question(template="tombstone")]
    images = [*_nozzle_frames(603, 3), _strange(0), *_nozzle_frames(604, 2)]
    calls = [BatchCall(image, ask) for image in images]
    answering = Inspector(familiar_folder, templates)
    for call, outcome in zip(calls, answering.inspect_batch(calls), strict=True):
        alone = answering.inspect(call.image, ask)
        assert _same(outcome, alone) < 1e-5
        assert outcome[0].familiarity == pytest.approx(alone[0].familiarity, abs=1e-3)
    assert outcome[0].familiar is not None
    refusing = Inspector(familiar_folder, templates, refuse_unfamiliar=True)
    outcomes = refusing.inspect_batch(calls)
    assert isinstance(outcomes[3], Unfamiliar)
    for i in (0, 1, 2, 4, 5):
        if isinstance(outcomes[i], Exception):  # an in-look view may score unfamiliar: rare
            assert isinstance(outcomes[i], Unfamiliar)
            with pytest.raises(Unfamiliar):
                refusing.inspect(images[i], ask)
        else:
            assert _same(outcomes[i], refusing.inspect(images[i], ask)) < 1e-5
