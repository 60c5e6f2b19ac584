"""Tiny model folders: mlx-community layout, deterministic, weights load as written."""

from __future__ import annotations

import hashlib
import json

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten

from pnp_vision.devtools.tiny_models import build_model_folder, ensure_tiny_model

LAYOUT = {
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
    "generation_config.json",
}


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "mllama"])
def test_layout_and_determinism(tmp_path, tiny_model_dir, kind):
    cached = tiny_model_dir(kind)
    names = {p.name for p in cached.iterdir()}
    assert names >= LAYOUT
    if kind == "qwen2_5_vl":
        assert "video_preprocessor_config.json" in names  # else mlx-vlm may reach for the hub
    rebuilt = build_model_folder(kind, tmp_path / kind)
    assert _digest(rebuilt) == _digest(cached)
    assert ensure_tiny_model(kind) == cached  # cached: same folder, not rebuilt


def test_special_tokens_agree_with_config(tiny_model_dir):
    from transformers import AutoTokenizer

    qwen = tiny_model_dir("qwen2_5_vl")
    config = json.loads((qwen / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(qwen)
    assert tok.convert_tokens_to_ids("<|image_pad|>") == config["image_token_id"]
    assert len(tok) == config["vocab_size"]
    mllama = tiny_model_dir("mllama")
    config = json.loads((mllama / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(mllama)
    assert tok.convert_tokens_to_ids("<|image|>") == config["image_token_index"]
    assert config["image_token_index"] == config["text_config"]["vocab_size"]
    for answer in ("YES", "NO"):
        assert len(tok.encode(answer, add_special_tokens=False)) == 1


def test_loaded_weights_are_the_written_ones(inspectors, tiny_model_dir):
    """Including Qwen's patch conv, stored in PyTorch order as mlx-community folders do."""
    for kind, inspector in inspectors.items():
        written = mx.load(str(tiny_model_dir(kind) / "model.safetensors"))
        loaded = dict(tree_flatten(inspector.model.parameters()))
        assert set(loaded) == set(written)
        for name, value in written.items():
            if kind == "qwen2_5_vl" and name.endswith("patch_embed.proj.weight"):
                value = value.transpose(0, 2, 3, 4, 1)
            assert mx.array_equal(loaded[name], value), name


def test_a_comment_in_a_template_does_not_change_the_tokenizer(tmp_path, prompts_dir) -> None:
    """The tokenizer (and so the cached tiny model) learns from what is asked, not from the
    template files' comments: a comment edit keeps the model, a question edit makes a new one."""
    import shutil

    from pnp_vision.devtools.tiny_models import QwenSpec, _cache_key

    shutil.copytree(prompts_dir, tmp_path / "p")
    before = _cache_key("qwen2_5_vl", QwenSpec(), tmp_path / "p")
    path = tmp_path / "p" / "tombstone.toml"
    path.write_text("# a comment a person added\n" + path.read_text())
    assert _cache_key("qwen2_5_vl", QwenSpec(), tmp_path / "p") == before
    path.write_text(path.read_text().replace("standing on one end", "standing upright"))
    assert _cache_key("qwen2_5_vl", QwenSpec(), tmp_path / "p") != before
