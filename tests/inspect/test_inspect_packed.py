"""Several one-pass questions about one image view run as one packed forward (Qwen2.5-VL), and
each answer equals the same question asked alone through the KV-cache path."""

from __future__ import annotations

import pytest

from pnp_vision.inspect import Inspector, Question, TemplateSet

TEMPLATES = {
    "corner": """
question = "Is the polarity dot in the {corner} corner? Answer YES or NO."
[params.corner]
type = "string"
description = "corner"
choices = ["top_left", "bottom_right"]
""",
    "marking": """
question = "Does the part marking read {marking}? Answer YES or NO."
[params.marking]
type = "string"
description = "marking"
pattern = "^[A-Z0-9-]{1,16}$"
""",
    "grade": """
question = "How is the solder joint? Answer OK, FAIL or MAYBE."
answers = ["OK", "FAIL", "MAYBE"]
""",
    "centre": """
question = "Is a part held on the nozzle? Answer YES or NO."
roi = [0.25, 0.25, 0.5, 0.5]
""",
    "centre_tip": """
question = "Is the nozzle tip centred on the crosshair? Answer YES or NO."
roi = [0.25, 0.25, 0.5, 0.5]
""",
    "sure_or_not": """
question = "Is the nozzle tip centred on the crosshair? Answer YES, NO or NOT_SURE."
answers = ["YES", "NO", "NOT_SURE"]
""",
    "small_sure_or_not": """
question = "Is the nozzle tip centred on the crosshair? Answer YES, NO or NOT_SURE."
answers = ["YES", "NO", "NOT_SURE"]
max_pixels = 3136
""",
}

# Three views: the whole frame (5 one-pass questions, 2 answer sets), the centre ROI (2), and a
# smaller pixel budget holding a question whose answers share a first token.
MIXED_VIEWS = [
    Question(template="corner", params={"corner": "top_left"}),
    Question(template="centre"),
    Question(template="marking", params={"marking": "R10K"}),
    Question(template="small_sure_or_not"),
    Question(template="corner", params={"corner": "bottom_right"}),
    Question(template="centre_tip"),
    Question(template="grade"),
    Question(template="marking", params={"marking": "C-0402-X7R"}),
]


@pytest.fixture(scope="module")
def packed(tmp_path_factory, tiny_model_dir) -> dict[str, Inspector]:
    folder = tmp_path_factory.mktemp("packed")
    for name, body in TEMPLATES.items():
        (folder / f"{name}.toml").write_text(f'name = "{name}"\ndescription = "test"\n{body}')
    templates = TemplateSet.load(folder)
    return {k: Inspector(tiny_model_dir(k), templates) for k in ("qwen2_5_vl", "mllama")}


@pytest.fixture
def packed_calls(packed, monkeypatch) -> list[int]:
    """Records how many questions each packed forward of the Qwen inspector carried."""
    adapter = packed["qwen2_5_vl"]._adapter
    real = adapter.packed_logits
    calls: list[int] = []

    def spy(prefix, suffixes, inputs, token_ids):
        calls.append(len(suffixes))
        return real(prefix, suffixes, inputs, token_ids)

    monkeypatch.setattr(adapter, "packed_logits", spy)
    return calls


def _one_by_one_on_cache(inspector: Inspector, frame, questions, monkeypatch) -> list[dict]:
    """Each question alone, through the KV-cache path (packing switched off)."""
    with monkeypatch.context() as m:
        m.setattr(inspector._adapter, "packs_questions", False)
        return [inspector.inspect(frame, [q])[0].probabilities for q in questions]


def test_packed_views_equal_each_question_alone(packed, packed_calls, make_frame, monkeypatch):
    inspector = packed["qwen2_5_vl"]
    frame = make_frame(31, 120, 160)
    together = inspector.inspect(frame, MIXED_VIEWS)
    assert sorted(packed_calls) == [2, 5]  # the multi-token question kept the cache path
    alone = _one_by_one_on_cache(inspector, frame, MIXED_VIEWS, monkeypatch)
    assert len(packed_calls) == 2  # the reference really ran without packing
    for question, result, expected in zip(MIXED_VIEWS, together, alone, strict=True):
        assert list(result.probabilities) == list(expected)
        assert result.probabilities == pytest.approx(expected, abs=1e-5), question
        assert result.answer == max(expected, key=expected.__getitem__)
    assert list(together[6].probabilities) == ["OK", "FAIL", "MAYBE"]
    # teeth: the questions' answers differ, so a suffix seeing its neighbours would show
    first = [round(next(iter(r.probabilities.values())), 4) for r in together]
    assert len(set(first)) == len(first)
    assert abs(first[0] - first[4]) > 1e-3  # same template, other parameter


def test_packed_single_question_equals_the_cache_path(
    packed, packed_calls, make_frame, monkeypatch
):
    inspector = packed["qwen2_5_vl"]
    frame = make_frame(32)
    questions = [Question(template="grade"), Question(template="centre")]
    single = [inspector.inspect(frame, [q])[0].probabilities for q in questions]
    assert packed_calls == [1, 1]
    alone = _one_by_one_on_cache(inspector, frame, questions, monkeypatch)
    for got, expected in zip(single, alone, strict=True):
        assert got == pytest.approx(expected, abs=1e-5)


def test_a_group_with_a_multi_token_question_is_not_packed(
    packed, packed_calls, kind, make_frame, monkeypatch
):
    inspector = packed[kind]
    frame = make_frame(33)
    questions = [
        Question(template="corner", params={"corner": "top_left"}),
        Question(template="sure_or_not"),
        Question(template="grade"),
    ]
    assert not inspector.answer_plan("sure_or_not").one_pass
    together = inspector.inspect(frame, questions)
    assert packed_calls == []
    alone = _one_by_one_on_cache(inspector, frame, questions, monkeypatch)
    for result, expected in zip(together, alone, strict=True):
        assert result.probabilities == pytest.approx(expected, abs=1e-5)
    assert list(together[1].probabilities) == ["YES", "NO", "NOT_SURE"]


def test_packed_answers_are_deterministic(packed, make_frame):
    inspector = packed["qwen2_5_vl"]
    frame = make_frame(34, 120, 160)
    first = [r.probabilities for r in inspector.inspect(frame, MIXED_VIEWS)]
    inspector.inspect(make_frame(35), MIXED_VIEWS[:3])  # other image, other packed shapes
    again = [r.probabilities for r in inspector.inspect(frame, MIXED_VIEWS)]
    assert again == first  # bit for bit
    reordered = inspector.inspect(frame, MIXED_VIEWS[::-1])[::-1]
    for result, expected in zip(reordered, first, strict=True):
        assert result.probabilities == pytest.approx(expected, abs=1e-5)


def test_packed_timings_split_the_shared_pass(packed, make_frame):
    inspector = packed["qwen2_5_vl"]
    results = inspector.inspect(make_frame(36), MIXED_VIEWS)
    whole_frame = [r for q, r in zip(MIXED_VIEWS, results, strict=True) if q.template in
                   ("corner", "marking", "grade")]  # fmt: skip
    assert len({r.timings.language_ms for r in whole_frame}) == 1  # one pass, split evenly
    assert all(r.timings.language_ms > 0 for r in results)
