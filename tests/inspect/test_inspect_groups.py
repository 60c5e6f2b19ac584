"""Templates with their own ROI / pixel budget form separate groups in one call, and the
mllama path for a chat template that refuses a system turn next to an image."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pnp_vision.errors import ImageError
from pnp_vision.inspect import Inspector, Question, TemplateSet

Q = "Is a part held on the nozzle? Answer YES or NO."
TEMPLATES = {
    "plain": f'question = "{Q}"\n',
    "plain_again": 'question = "Is the nozzle tip centred on the crosshair? Answer YES or NO."\n',
    "centre": f'question = "{Q}"\nroi = [0.25, 0.25, 0.5, 0.5]\n',
    "small": f'question = "{Q}"\nmax_pixels = 3136\n',
    "terse": f'question = "{Q}"\nsystem = "Answer YES or NO."\n',
}
CORNER = (
    'question = "Is the dot in the {corner} corner? Answer YES or NO."\n'
    'mirror = "corner"\n[params.corner]\n'
    'choices = ["top_left", "top_right", "bottom_left", "bottom_right"]\n'
)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory, tiny_model_dir) -> dict[str, Inspector]:
    folder = tmp_path_factory.mktemp("grouped")
    for name, body in {**TEMPLATES, "corner": CORNER}.items():
        (folder / f"{name}.toml").write_text(f'name = "{name}"\ndescription = "test"\n{body}')
    templates = TemplateSet.load(folder)
    return {k: Inspector(tiny_model_dir(k), templates) for k in ("qwen2_5_vl", "mllama")}


def test_groups_in_one_call_equal_single_calls(grouped, kind, make_frame):
    inspector = grouped[kind]
    frame = make_frame(21, 120, 160)
    questions = [Question(template=name) for name in TEMPLATES]
    questions += [Question(template="corner", params={"corner": "bottom_right"})]
    together = inspector.inspect(frame, questions)
    for question, result in zip(questions, together, strict=True):
        alone = inspector.inspect(frame, [question])[0]
        assert result.probabilities == pytest.approx(alone.probabilities, abs=1e-6)


def test_template_roi_and_budget_are_applied(grouped, make_frame):
    inspector = grouped["qwen2_5_vl"]
    frame = make_frame(22, 120, 160)
    centre = inspector.inspect(frame, [Question(template="centre")])[0]
    crop = np.ascontiguousarray(frame[30:90, 40:120])  # the ROI's pixels in a 160x120 frame
    on_crop = inspector.inspect(crop, [Question(template="plain")])[0]
    assert centre.probabilities == pytest.approx(on_crop.probabilities, abs=1e-6)
    small = inspector.inspect(frame, [Question(template="small")])[0]
    plain = inspector.inspect(frame, [Question(template="plain")])[0]
    assert small.probabilities != plain.probabilities  # fewer pixels, different image tokens
    resized = Image.fromarray(frame[:, :, ::-1].copy()).resize((64, 48), Image.Resampling.BICUBIC)
    assert inspector.inspect(resized, [Question(template="plain")])[
        0
    ].probabilities == pytest.approx(small.probabilities, abs=1e-6)


def test_system_text_is_part_of_the_prompt(grouped, make_frame):
    inspector = grouped["qwen2_5_vl"]
    assert "Answer YES or NO.<|im_end|>" in inspector.prompt(Question(template="terse"))
    frame = make_frame(23)
    terse, plain = inspector.inspect(
        frame, [Question(template="terse"), Question(template="plain")]
    )
    assert terse.probabilities != plain.probabilities


def test_extreme_aspect_ratio_is_an_image_error(grouped):
    inspector = grouped["qwen2_5_vl"]
    sliver = np.zeros((2, 1200, 3), np.uint8)
    with pytest.raises(ImageError, match="1200x2"):
        inspector.inspect(sliver, [Question(template="plain")])
    assert inspector.inspect(np.zeros((64, 64, 3), np.uint8), [Question(template="plain")])


def test_warm_up_and_info(grouped):
    inspector = grouped["mllama"]
    inspector.warm_up()
    info = inspector.info()
    assert info["model_type"] == "mllama" and info["dtype"] == "float32"
    assert info["parameter_bytes"] > 0 and "cpu" in info["device"].lower()


REFUSING = (
    "{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('Prompting with images is incompatible with system messages.') }}"
    "{% endif %}"
)


def test_mllama_template_refusing_system_turns(tmp_path, tiny_model_dir, templates, make_frame):
    """Like the real Llama 3.2 Vision template: the system text moves before the image."""
    folder = tmp_path / "mllama"
    shutil.copytree(tiny_model_dir("mllama"), folder)
    for name in ("chat_template.json", "tokenizer_config.json"):
        data = json.loads((folder / name).read_text())
        data["chat_template"] = REFUSING + data["chat_template"]
        (folder / name).write_text(json.dumps(data))
    inspector = Inspector(folder, templates)
    question = Question(template="nozzle_alignment")
    prompt = inspector.prompt(question)
    assert "<|start_header_id|>system" not in prompt
    system = templates.get("nozzle_alignment").system
    assert prompt.index(system) < prompt.index("<|image|>") < prompt.index("Is the nozzle tip")
    result = inspector.inspect(make_frame(24), [question])[0]
    assert sum(result.probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("corner", "flip"),
    [("top_left", None), ("top_right", 1), ("bottom_left", 0), ("bottom_right", (0, 1))],
)
def test_a_mirrored_corner_is_the_top_left_of_the_mirrored_frame(grouped, make_frame, corner, flip):
    """`mirror`: asking about a corner is asking about the top left of the view mirrored so
    that corner is its top left: one image check whatever corner is named."""
    inspector = grouped["qwen2_5_vl"]
    frame = make_frame(23, 120, 160)
    asked = inspector.inspect(frame, [Question(template="corner", params={"corner": corner})])
    mirrored = np.ascontiguousarray(frame if flip is None else np.flip(frame, flip))
    top_left = Question(template="corner", params={"corner": "top_left"})
    assert asked[0].probabilities == pytest.approx(
        inspector.inspect(mirrored, [top_left])[0].probabilities, abs=1e-6
    )
    if flip is not None:  # and it is another image than the unmirrored one
        assert asked[0].probabilities != inspector.inspect(frame, [top_left])[0].probabilities
