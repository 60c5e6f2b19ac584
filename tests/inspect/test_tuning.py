"""tune_model: the compute dtype per device, dequantized checkpoints, and the report at load;
the runtime setup (BLAS, freed memory) that comes before it."""

from __future__ import annotations

import logging
import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from pnp_vision.config import load_settings
from pnp_vision.inspect import tuning
from pnp_vision.inspect.loading import load_model
from pnp_vision.inspect.runtime import setup_runtime


def _load(tiny_model_dir, kind: str, quantize: bool):
    model, _, config = load_model(tiny_model_dir(kind))
    model.set_dtype(mx.float32)
    if quantize:  # what an mlx-community 4-bit folder holds: every layer whose width divides
        nn.quantize(
            model,
            group_size=32,
            bits=4,
            class_predicate=lambda _, m: (
                hasattr(m, "to_quantized") and m.weight.shape[-1] % 32 == 0
            ),
        )
    mx.eval(model.parameters())
    return model, config


def _probs(model, config) -> np.ndarray:
    """mlx-vlm's own forward on a fixed image prompt; YES/NO-like probabilities of 2 ids."""
    grid = [1, 8, 8]
    ids = [5, config["vision_start_token_id"], *[config["image_token_id"]] * 16]
    ids += [config["vision_end_token_id"], 9, 10]
    px = mx.array(np.random.default_rng(0).standard_normal((64, 1176), np.float32))
    lm = model.language_model
    lm._position_ids = lm._rope_deltas = None
    out = model(mx.array([ids]), pixel_values=px, image_grid_thw=mx.array([grid]))
    return np.array(mx.softmax(out.logits[0, -1, [11, 12]].astype(mx.float32)))


def test_resolve_compute_dtype():
    assert tuning.resolve_compute_dtype("auto", "cpu") == mx.float32
    assert tuning.resolve_compute_dtype("auto", "gpu") is None  # keep the checkpoint's
    assert tuning.resolve_compute_dtype("bfloat16", "gpu") == mx.bfloat16
    with pytest.raises(ValueError, match="float64"):
        tuning.resolve_compute_dtype("float64", "cpu")


def test_cpu_dequantizes_to_fp32_with_the_same_answers(tiny_model_dir, caplog):
    model, config = _load(tiny_model_dir, "qwen2_5_vl", quantize=True)
    before = _probs(model, config)
    with caplog.at_level(logging.INFO, logger="pnp_vision.inspect.tuning"):
        report = tuning.tune_model(model, "auto")
    assert report.device == "cpu" and report.compute_dtype == "float32"
    assert report.dequantized_layers > 0 and report.quantized_layers_kept == 0
    assert report.weight_bytes_after > report.weight_bytes_before  # the memory cost, reported
    assert "model tuned" in caplog.text and "GiB" in caplog.text
    backend = setup_runtime().backend  # BLAS and malloc settings, decided once from Settings
    if sys.platform.startswith("linux") and load_settings().keep_memory:
        assert backend.memory_kept and "freed memory kept" in backend.summary()
    assert not any(isinstance(m, nn.QuantizedLinear) for _, m in model.named_modules())
    np.testing.assert_allclose(_probs(model, config), before, atol=1e-4)


def test_gpu_auto_expands_quantized_weights_only_where_they_fit(tiny_model_dir):
    big, _ = _load(tiny_model_dir, "qwen2_5_vl", quantize=True)
    report = tuning.tune_model(big, "auto", device="gpu", device_bytes=1 << 40)
    assert report.compute_dtype == "bfloat16" and report.quantized_layers_kept == 0
    small, _ = _load(tiny_model_dir, "qwen2_5_vl", quantize=True)
    report = tuning.tune_model(small, "auto", device="gpu", device_bytes=1 << 10)
    assert report.dequantized_layers == 0 and report.quantized_layers_kept > 0
    assert "kept" in report.summary()


def test_explicit_dtype_and_mllama(tiny_model_dir):
    model, _ = _load(tiny_model_dir, "mllama", quantize=False)
    report = tuning.tune_model(model, "bfloat16")
    assert report.compute_dtype == "bfloat16"
    assert any("slower" in n for n in report.notes)  # bf16 on the CPU is flagged
