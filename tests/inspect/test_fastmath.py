"""The CPU fast math computes what MLX's own ops compute, within float32 rounding."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from pnp_vision.inspect import fastmath


def test_exp_is_within_float32_rounding_of_exact_over_its_range():
    x = mx.linspace(-87.0, 88.0, 200_001)
    exact = np.exp(np.array(x, np.float64))
    got = np.array(fastmath.exp(x), np.float64)
    assert np.max(np.abs(got - exact) / exact) < 2e-7
    assert float(fastmath.exp(mx.array(-mx.inf))) < 1e-37  # masked scores weigh nothing


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
def test_attention_matches_mlx_sdpa(heads, kv_heads, length, keys, mask):
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


def test_patched_mlx_vlm_paths_follow_the_switch():
    """After the patch, mlx-vlm's SwiGLU is the fast one while on, its own one while off."""
    from mlx_vlm.models import mlp as vlm_mlp

    fastmath.patch_mlx_vlm()
    gate = mx.array(np.linspace(-30, 30, 4001, dtype=np.float32))
    with fastmath.forced(False):
        plain = vlm_mlp.swiglu(gate, gate)
    with fastmath.forced(True):
        fast = vlm_mlp.swiglu(gate, gate)
    assert np.allclose(plain, fast, rtol=1e-5, atol=1e-5)
    assert np.array_equal(plain, fastmath._PATCHED["swiglu"](gate, gate))
    assert not np.array_equal(plain, fast)  # a different computation, not the same one twice
