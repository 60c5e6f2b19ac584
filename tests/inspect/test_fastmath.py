"""The CPU fast math computes what MLX's own ops compute, within float32 rounding."""

from __future__ import annotations

from dataclasses import replace

import mlx.core as mx
import numpy as np
import pytest

from pnp_vision.inspect import fastmath
from pnp_vision.inspect.models import patching
from pnp_vision.inspect.runtime import setup_runtime


def _install(model_type: str) -> None:
    """The fast routes of `model_type` (what the CPU runtime installs), whatever this host is."""
    runtime = setup_runtime()
    patching.install(patching.patches_for(model_type).routes(replace(runtime, fastmath=True)))


def test_exp_is_within_float32_rounding_of_exact_over_its_range():
    x = mx.linspace(-87.0, 88.0, 200_001)
    exact = np.exp(np.array(x, np.float64))
    got = np.array(fastmath.exp(x), np.float64)
    assert np.max(np.abs(got - exact) / exact) < 2e-7
    edges = fastmath.exp(mx.array([-mx.inf, -1e4, fastmath.MASKED, 0.0, 1e4, mx.inf]))
    assert edges.tolist() == [0.0, 0.0, 0.0, 1.0, np.inf, np.inf]  # masked scores weigh nothing


def test_softmax_weights_and_gates_at_the_range_edges():
    """The kernels without a clip pass (x - max <= 0, e**-|x|) are exact there too."""
    x = mx.array(np.linspace(-87, 0, 100_001, dtype=np.float32))
    exact = np.exp(np.array(x, np.float64))
    got = np.array(fastmath._exp_shifted(x, mx.array(0.0)), np.float64)
    assert np.max(np.abs(got - exact) / exact) < 2e-7
    assert fastmath._exp_shifted(mx.array([fastmath.MASKED, -200.0]), mx.array(0.0)).tolist() == [
        0.0,
        0.0,
    ]
    g = mx.array(np.linspace(-120, 120, 48_001, dtype=np.float32))
    assert np.allclose(fastmath.sigmoid(g), mx.sigmoid(g), rtol=1e-6, atol=2e-7)
    assert np.allclose(
        fastmath.silu_mul(g, g + 1), g * mx.sigmoid(g) * (g + 1), rtol=1e-6, atol=1e-6
    )


def test_silu_mul_gradient_matches_mlx():
    x = mx.array(np.random.default_rng(1).normal(0, 4, (32, 48)).astype(np.float32))
    y = mx.array(np.random.default_rng(2).normal(0, 1, (32, 48)).astype(np.float32))

    def loss(fn):
        return lambda a, b: (fn(a, b) ** 2).sum()

    fast = mx.grad(loss(fastmath.silu_mul), argnums=(0, 1))(x, y)
    plain = mx.grad(loss(lambda a, b: a * mx.sigmoid(a) * b), argnums=(0, 1))(x, y)
    for f, p in zip(fast, plain, strict=True):
        assert np.allclose(f, p, rtol=1e-4, atol=1e-4)


def test_gelu_matches_mlx_exact_gelu_and_its_gradient():
    import mlx.nn as nn

    x = mx.array(np.linspace(-12, 12, 96_001, dtype=np.float32))
    assert np.max(np.abs(np.array(fastmath.gelu(x) - nn.gelu(x)))) < 1e-6
    fast = mx.grad(lambda a: fastmath.gelu(a).sum())(x)
    plain = mx.grad(lambda a: nn.gelu(a).sum())(x)
    assert np.allclose(fast, plain, atol=1e-5)


def test_silu_and_its_gradient_match_mlx():
    x = mx.array(np.random.default_rng(0).normal(0, 4, (64, 96)).astype(np.float32))
    assert np.allclose(fastmath.silu(x), x * mx.sigmoid(x), atol=2e-6)

    def loss(fn):
        return lambda a: (fn(a) ** 2).sum()

    fast = mx.grad(loss(fastmath.silu))(x)
    plain = mx.grad(loss(lambda a: a * mx.sigmoid(a)))(x)
    assert np.allclose(fast, plain, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("heads", "kv_heads", "length", "keys", "mask"),
    [
        (4, 4, 9, 9, None),
        (4, 2, 9, 9, "causal"),
        (8, 2, 3, 11, "causal"),  # queries are the last 3 of 11 positions (a cached prefix)
        (4, 1, 6, 6, "additive"),
        (4, 2, 5, 7, "bool"),
    ],
)
@pytest.mark.parametrize("chunk", [None, 2 * 4 * 7])  # one pass; a few query rows at a time
def test_attention_matches_mlx_sdpa(heads, kv_heads, length, keys, mask, chunk, monkeypatch):
    if chunk:
        monkeypatch.setattr(fastmath, "CHUNK_SCORES", chunk)
    rng = np.random.default_rng(heads * 100 + keys)
    q = mx.array(rng.normal(size=(2, heads, length, 16)).astype(np.float32))
    k = mx.array(rng.normal(size=(2, kv_heads, keys, 16)).astype(np.float32))
    v = mx.array(rng.normal(size=(2, kv_heads, keys, 16)).astype(np.float32))
    if mask == "additive":
        m = mx.array(np.where(rng.random((2, 1, length, keys)) < 0.3, -np.inf, 0.0), mx.float32)
        m[..., 0] = 0.0  # every query keeps one key
    elif mask == "bool":
        m = mx.array(rng.random((length, keys)) > 0.3)
        m[:, 0] = True
    else:
        m = mask
    want = mx.fast.scaled_dot_product_attention(q, k, v, scale=0.25, mask=m)
    got = fastmath.attention(q, k, v, 0.25, m)
    assert got.shape == want.shape
    assert np.allclose(got, want, atol=1e-5)


def test_patched_mlx_vlm_paths_follow_the_routes():
    """With the routes in, mlx-vlm's SwiGLU is the fast one; unpatched, its own one."""
    from mlx_vlm.models import mlp as vlm_mlp

    _install("qwen2_5_vl")
    gate = mx.array(np.linspace(-30, 30, 4001, dtype=np.float32))
    with patching.unpatched():
        plain = vlm_mlp.swiglu(gate, gate)
    fast = vlm_mlp.swiglu(gate, gate)
    assert np.allclose(plain, fast, rtol=1e-5, atol=1e-5)
    assert np.array_equal(plain, patching.original(vlm_mlp, "swiglu")(gate, gate))
    assert not np.array_equal(plain, fast)  # a different computation, not the same one twice


def test_patched_mllama_follows_the_routes_with_the_same_answers(tiny_model_dir):
    """mllama's text MLP, vision MLP (exact GELU) and vision attention (tile padding mask) go
    through the fast functions while routed, and give mlx-vlm's own logits."""
    from pnp_vision.inspect.loading import load_model

    _install("mllama")
    model, _, config = load_model(tiny_model_dir("mllama"))
    model.set_dtype(mx.float32)
    vision = config["vision_config"]
    side, tiles = vision["image_size"], vision["max_num_tiles"]
    rng = np.random.default_rng(3)
    ids = [5, config["image_token_index"], 9, 10, 11]
    cross = np.zeros((1, len(ids), 1, tiles), np.float32)
    cross[:, 1:, :, :2] = 1.0  # two of the four tiles are real: the rest is padding
    kwargs = {
        "pixel_values": mx.array(rng.standard_normal((1, 1, tiles, 3, side, side), np.float32)),
        "aspect_ratio_ids": mx.array([[2]]),
        "aspect_ratio_mask": mx.array([[[1, 1, 0, 0]]]),
        "cross_attention_mask": mx.array(cross),
    }

    def logits():
        return np.array(model(mx.array([ids]), **kwargs).logits[0, -1].astype(mx.float32))

    with patching.unpatched():
        plain = logits()
    fast = logits()
    assert np.allclose(fast, plain, rtol=1e-4, atol=1e-4)
    assert not np.array_equal(fast, plain)


def test_attention_on_two_streams_matches_and_falls_back_under_compile(monkeypatch):
    """Big attention runs its chunks on two CPU streams (evaluated there); inside mx.compile,
    where evaluating is not allowed, the same chunks run lazily on one."""
    monkeypatch.setattr(fastmath, "PARALLEL_SCORES", 100)
    rng = np.random.default_rng(7)
    q = mx.array(rng.normal(size=(2, 4, 9, 16)).astype(np.float32))
    k = mx.array(rng.normal(size=(2, 2, 11, 16)).astype(np.float32))
    v = mx.array(rng.normal(size=(2, 2, 11, 16)).astype(np.float32))
    want = mx.fast.scaled_dot_product_attention(q, k, v, scale=0.25, mask="causal")
    assert np.allclose(fastmath.attention(q, k, v, 0.25, "causal"), want, atol=1e-5)
    compiled = mx.compile(lambda a, b, c: fastmath.attention(a, b, c, 0.25, "causal"))
    assert np.allclose(compiled(q, k, v), want, atol=1e-5)
