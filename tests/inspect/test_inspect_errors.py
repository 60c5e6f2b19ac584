"""Every bad input gets its own error, and the engine keeps answering afterwards; every broken
model folder is a one-line ModelLoadError naming the path and what is missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.errors import (
    BadParams,
    BadRequest,
    ConfigError,
    ImageError,
    ModelLoadError,
    UnknownTemplate,
)
from pnp_vision.inspect import Inspector, Question
from pnp_vision.inspect.loading import check_model_folder

GOOD = [Question(template="nozzle_alignment"), Question(template="tombstone")]

BAD_CALLS = [
    ("corrupt bytes", lambda f: (b"\x89PNG garbage", GOOD, None), ImageError, "cannot decode"),
    ("empty bytes", lambda f: (b"", GOOD, None), ImageError, "0 bytes"),
    ("empty array", lambda f: (np.zeros((0, 4, 3), np.uint8), GOOD, None), ImageError, "empty"),
    ("float array", lambda f: (f.astype(np.float32), GOOD, None), ImageError, "float32"),
    ("roi outside", lambda f: (f, GOOD, (100, 0, 50, 50)), ImageError, "outside the 128x96"),
    ("unknown template", lambda f: (f, [Question(template="nope")], None), UnknownTemplate, "nope"),
    (
        "bad param",
        lambda f: (f, [*GOOD, Question(template="part_marking", params={"marking": "x y"})], None),
        BadParams,
        "'x y'",
    ),
    ("no questions", lambda f: (f, [], None), BadRequest, "no questions"),
    ("not a list", lambda f: (f, GOOD[0], None), BadRequest, "list of Question"),
    ("bad dict", lambda f: (f, [{"template": 3}], None), BadRequest, "question 0"),
]


@pytest.mark.parametrize(
    ("label", "make", "error", "fragment"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS]
)
def test_bad_input_then_engine_still_answers(inspector, make_frame, label, make, error, fragment):
    frame = make_frame(11)
    before = inspector.inspect(frame, GOOD)
    image, questions, roi = make(frame)
    with pytest.raises(error) as info:
        inspector.inspect(image, questions, roi=roi)
    assert fragment in str(info.value), label
    after = inspector.inspect(frame, GOOD)
    assert [r.probabilities for r in after] == [r.probabilities for r in before]


def test_dict_questions_are_accepted(inspector, make_frame):
    frame = make_frame(12)
    as_dict = inspector.inspect(frame, [{"template": "tombstone"}])[0]
    assert (
        as_dict.probabilities
        == inspector.inspect(frame, [Question(template="tombstone")])[0].probabilities
    )


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _break(folder: Path, how: str) -> str:
    """Damage a copy of a good folder; returns the fragment the error must contain."""
    if how == "no folder":
        shutil.rmtree(folder)
        return "does not exist"
    if how == "a file":
        shutil.rmtree(folder)
        folder.write_text("x")
        return "is not a folder"
    if how == "no config":
        (folder / "config.json").unlink()
        return "no config.json"
    if how == "bad config":
        (folder / "config.json").write_text("{not json")
        return "unreadable config"
    if how == "unsupported":
        config = json.loads((folder / "config.json").read_text())
        config["model_type"] = "llava"
        (folder / "config.json").write_text(json.dumps(config))
        return "unsupported model_type 'llava'"
    if how == "no weights":
        for p in folder.glob("model*.safetensors*"):
            p.unlink()
        return "no weights"
    if how == "missing shard":
        (folder / "model.safetensors").unlink()
        return "missing: model.safetensors"
    if how == "no tokenizer":
        (folder / "tokenizer.json").unlink()
        return "no tokenizer files"
    if how == "no processor":
        (folder / "preprocessor_config.json").unlink()
        return "no processor config"
    raise AssertionError(how)


BREAKS = [
    "no folder",
    "a file",
    "no config",
    "bad config",
    "unsupported",
    "no weights",
    "missing shard",
    "no tokenizer",
    "no processor",
]


@pytest.mark.parametrize("how", BREAKS)
def test_broken_model_folder(tmp_path, tiny_model_dir, how):
    folder = _copy(tiny_model_dir("qwen2_5_vl"), tmp_path / "model")
    fragment = _break(folder, how)
    with pytest.raises(ModelLoadError) as info:
        check_model_folder(folder)
    message = str(info.value)
    assert fragment in message and str(folder) in message and "\n" not in message


def test_inspector_reports_broken_folders(tmp_path, tiny_model_dir, templates):
    with pytest.raises(ModelLoadError, match="does not exist"):
        Inspector(tmp_path / "missing-model", templates)
    folder = _copy(tiny_model_dir("mllama"), tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)  # corrupt weights: mlx-vlm fails
    with pytest.raises(ModelLoadError) as info:
        Inspector(folder, templates)
    assert str(folder) in str(info.value) and "mlx-vlm could not load it" in str(info.value)


def test_inspector_settings_are_checked(tiny_model_dir, templates):
    with pytest.raises(ConfigError, match=r"min_confidence 1\.5"):
        Inspector(tiny_model_dir("qwen2_5_vl"), templates, min_confidence=1.5)
    with pytest.raises(ConfigError, match="compute_dtype 'int8'"):
        Inspector(tiny_model_dir("qwen2_5_vl"), templates, compute_dtype="int8")
