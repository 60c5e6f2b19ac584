"""The Inspector on real tiny mlx-vlm models (both architectures): correctness against mlx-vlm
itself, prefix sharing, determinism, input types and ROI."""

from __future__ import annotations

import io
import math
import threading

import mlx.core as mx
import numpy as np
import pytest
from PIL import Image

from pnp_vision.errors import ModelError
from pnp_vision.inspect import Inspector, Question, TemplateSet, imageprep
from pnp_vision.inspect.templates import DEFAULT_SYSTEM

ALL_QUESTIONS = [
    Question(template="nozzle_alignment"),
    Question(template="part_on_nozzle"),
    Question(template="part_marking", params={"marking": "R10K"}),
    Question(template="polarity_mark", params={"corner": "bottom_right"}),
    Question(template="tombstone"),
    Question(template="feeder_pocket_empty"),
]


def _prompt(inspector: Inspector, system: str, text: str) -> str:
    """The prompt mlx-vlm would see: system, image, question (built here, not by the engine)."""
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]},
    ]
    tok = inspector.processor.tokenizer
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _mlx_vlm_logprobs(
    inspector: Inspector,
    bgr: np.ndarray,
    prompt: str,
    extra: list[int],
    roi=None,
    view=None,
    mirror=(False, False),
):
    """Log-softmax of mlx-vlm's own full forward pass over prompt (+ extra tokens) and image
    (the template's ROI cut out, sized to its view and mirrored first, as the engine does)."""
    view = imageprep.prepare(bgr, template_roi=roi, view_size=view, mirror=mirror)
    inputs = inspector.processor(text=[prompt], images=[view], return_tensors="mlx")
    ids = inputs["input_ids"]
    if extra:
        ids = mx.concatenate([ids, mx.array([extra], dtype=ids.dtype)], axis=1)
        if "cross_attention_mask" in inputs:  # mllama: new rows attend to the image as well
            cam = inputs["cross_attention_mask"]
            tail = mx.repeat(cam[:, -1:], len(extra), axis=1)
            inputs["cross_attention_mask"] = mx.concatenate([cam, tail], axis=1)
    kwargs = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    logits = inspector.model(ids, **kwargs).logits[0].astype(mx.float32)
    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


def _first_step_probs(inspector: Inspector, bgr: np.ndarray, question: Question) -> dict:
    template = inspector.templates.get(question.template)
    prompt = _prompt(inspector, template.system, template.render(question.params))
    mirror = template.mirroring(question.params)
    last = _mlx_vlm_logprobs(inspector, bgr, prompt, [], template.roi, template.view, mirror)[-1]
    tok = inspector.processor.tokenizer
    ids = [tok.encode(a, add_special_tokens=False)[0] for a in template.answers]
    probs = mx.softmax(last[mx.array(ids)]).tolist()
    return dict(zip(template.answers, probs, strict=True))


@pytest.mark.parametrize("seed", [1, 2])
def test_probabilities_equal_mlx_vlm_first_decoding_step(inspector, make_frame, seed):
    bgr = make_frame(seed)
    results = inspector.inspect(bgr, ALL_QUESTIONS)
    for question, result in zip(ALL_QUESTIONS, results, strict=True):
        assert inspector.answer_plan(question.template).one_pass
        expected = _first_step_probs(inspector, bgr, question)
        assert result.probabilities == pytest.approx(expected, abs=1e-6), question.template
        assert result.answer == max(expected, key=expected.get)


def test_answers_depend_on_the_image(inspector, make_frame):
    """Guards the reference test against a model that ignores pixels (e.g. closed gates)."""
    q = [Question(template="nozzle_alignment")]
    a = inspector.inspect(make_frame(1), q)[0].probabilities["YES"]
    b = inspector.inspect(make_frame(2), q)[0].probabilities["YES"]
    assert abs(a - b) > 1e-4


def test_many_questions_equal_each_alone(inspector, make_frame):
    bgr = make_frame(3)
    together = inspector.inspect(bgr, ALL_QUESTIONS)
    for question, result in zip(ALL_QUESTIONS, together, strict=True):
        alone = inspector.inspect(bgr, [question])[0]
        assert result.answer == alone.answer
        assert result.probabilities == pytest.approx(alone.probabilities, abs=1e-6)
        assert result.question == alone.question


def test_repeated_calls_are_deterministic_across_other_images(inspector, make_frame):
    """Interleaving other images (and mlx-vlm's own stateful calls) changes nothing."""
    bgr = make_frame(4)
    first = inspector.inspect(bgr, ALL_QUESTIONS)
    inspector.inspect(make_frame(5, 64, 200), ALL_QUESTIONS[:2])
    _first_step_probs(inspector, make_frame(6), ALL_QUESTIONS[0])  # sets mlx-vlm's rope state
    again = inspector.inspect(bgr, ALL_QUESTIONS)
    assert [r.probabilities for r in again] == [r.probabilities for r in first]


def test_result_fields(inspector, make_frame):
    results = inspector.inspect(make_frame(7), ALL_QUESTIONS)
    assert [r.template for r in results] == [q.template for q in ALL_QUESTIONS]
    marking = results[2]
    assert marking.question == "Does the part marking read R10K? Answer YES or NO."
    assert marking.params == {"marking": "R10K"}
    for r in results:
        assert set(r.probabilities) == {"YES", "NO"}
        assert math.isclose(sum(r.probabilities.values()), 1.0, abs_tol=1e-9)
        assert r.confident == (max(r.probabilities.values()) >= inspector.min_confidence)
        t = r.timings
        assert t.vision_ms > 0 and t.language_ms > 0 and t.prep_ms > 0
        assert t.total_ms == pytest.approx(t.prep_ms + t.vision_ms + t.language_ms)


def test_image_input_types_agree(inspector, make_frame):
    bgr = make_frame(8)
    rgb = Image.fromarray(bgr[:, :, ::-1].copy())
    png = io.BytesIO()
    rgb.save(png, format="PNG")
    q = [Question(template="tombstone")]
    expected = inspector.inspect(bgr, q)[0].probabilities
    assert inspector.inspect(rgb, q)[0].probabilities == expected
    assert inspector.inspect(png.getvalue(), q)[0].probabilities == expected
    swapped = inspector.inspect(np.ascontiguousarray(bgr[:, :, ::-1]), q)[0].probabilities
    assert swapped != expected  # channel order matters: BGR really is read as BGR


def test_roi_equals_inspecting_the_crop(inspector, make_frame):
    bgr = make_frame(9, 120, 160)
    q = [Question(template="part_on_nozzle")]
    cropped = inspector.inspect(np.ascontiguousarray(bgr[10:90, 20:120]), q)[0]
    via_roi = inspector.inspect(bgr, q, roi=(20, 10, 100, 80))[0]
    assert via_roi.probabilities == cropped.probabilities


def test_used_from_another_thread_is_an_error(inspector, make_frame):
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            inspector.inspect(make_frame(1), [Question(template="tombstone")])
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=ask)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ModelError)
    assert "thread" in str(errors[0])


SHARED_PREFIX_TEMPLATE = """
name = "sure_or_not"
description = "Answers that share a first token, one a prefix of another."
question = "Is the nozzle tip centred on the crosshair? Answer YES, NO or NOT_SURE."
answers = ["YES", "NO", "NOT_SURE"]
"""


@pytest.fixture(scope="module")
def shared_prefix_inspectors(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("prompts")
    (folder / "sure_or_not.toml").write_text(SHARED_PREFIX_TEMPLATE)
    templates = TemplateSet.load(folder)
    return {k: Inspector(tiny_model_dir(k), templates) for k in ("qwen2_5_vl", "mllama")}


def test_shared_first_token_scores_full_sequences(shared_prefix_inspectors, kind, make_frame):
    inspector = shared_prefix_inspectors[kind]
    plan = inspector.answer_plan("sure_or_not")
    assert not plan.one_pass  # NO and NOT_SURE start with the same token
    tok = inspector.processor.tokenizer
    assert all(seq[-1] == tok.eos_token_id for seq in plan.sequences)  # NO is a prefix
    bgr = make_frame(10)
    result = inspector.inspect(bgr, [Question(template="sure_or_not")])[0]

    prompt = _prompt(inspector, DEFAULT_SYSTEM, result.question)
    totals = []
    for seq in plan.sequences:
        logprobs = _mlx_vlm_logprobs(inspector, bgr, prompt, list(seq[:-1]))
        steps = logprobs[-len(seq) :]  # position i predicts seq[i]
        totals.append(sum(steps[i, t].item() for i, t in enumerate(seq)))
    expected = mx.softmax(mx.array(totals)).tolist()
    assert list(result.probabilities.values()) == pytest.approx(expected, abs=1e-6)
    assert list(result.probabilities) == ["YES", "NO", "NOT_SURE"]
