"""Rotary embedding of q and k straight out of a fused q/k/v projection.

The vision tower and the language model both project q, k and v in one matmul, rotate q and k
(rotate-half pairing: dimension i with i + D/2) and hand (batch, heads, length, D) arrays to
attention. As MLX ops on CUDA that is 8 kernels a layer (a negation and two copies for each
rotate-half concatenation, then a multiply-add each), ~35-39 us of a layer on an H200; one CUDA
kernel does it all, with the same float arithmetic rounded once. It is used on GPUs where it
builds and agrees with the ops (`enable_kernel`, checked once at load); elsewhere the ops.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from pnp_vision.inspect.runtime import device_kind

_SOURCE = """
    unsigned int i = cooperative_groups::this_grid().thread_rank();
    if (i >= B * L * (H + 2 * KV) * D) return;
    unsigned int d = i % D, j = (i / D) % (H + 2 * KV), t = i / (D * (H + 2 * KV));
    unsigned int half = D / 2;
    const T* row = qkv + (size_t)t * (H + 2 * KV) * D + (size_t)j * D;
    if (j >= H + KV) {
        v[((size_t)t * KV + (j - H - KV)) * D + d] = row[d];
        return;
    }
    unsigned int p = d < half ? d + half : d - half;
    float sign = d < half ? -1.0f : 1.0f;
    size_t at = (size_t)t * D + d;
    float out = float(row[d]) * float(cos_t[at]) + sign * float(row[p]) * float(sin_t[at]);
    if (j < H) {
        q[((size_t)t * H + j) * D + d] = T(out);
    } else {
        k[((size_t)t * KV + (j - H)) * D + d] = T(out);
    }
"""

_KERNEL: list[Any] = []  # the built kernel, once `enable_kernel` found it good


@mx.compile
def _rotate(x: mx.array, cos: mx.array, sin: mx.array) -> mx.array:
    half = x.shape[-1] // 2
    rotated = mx.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return (x * cos + rotated * sin).astype(x.dtype)


def rope_qkv_ops(
    qkv: mx.array, cos: mx.array, sin: mx.array, heads: int, kv_heads: int
) -> tuple[mx.array, mx.array, mx.array]:
    """qkv (B, L, (heads + 2 kv_heads) * D), cos/sin (B, L, D) -> q (B, heads, L, D), k and v
    (B, kv_heads, L, D): transposed views of token-major (B, L, heads, D) data, the layout the
    projection writes and attention reads as it is. q and k rotated in the promoted dtype of
    qkv and cos, cast back."""
    b, n, width = qkv.shape
    dim = width // (heads + 2 * kv_heads)
    x = qkv.reshape(b, n, heads + 2 * kv_heads, dim)
    q, k, v = x[:, :, :heads], x[:, :, heads : heads + kv_heads], x[:, :, heads + kv_heads :]
    c, s = cos[:, :, None], sin[:, :, None]
    return tuple(a.transpose(0, 2, 1, 3) for a in (_rotate(q, c, s), _rotate(k, c, s), v))


def _rope_kernel(
    qkv: mx.array, cos: mx.array, sin: mx.array, heads: int, kv_heads: int
) -> tuple[mx.array, mx.array, mx.array]:
    b, n, width = qkv.shape
    dim = width // (heads + 2 * kv_heads)
    shapes = [(b, n, heads, dim), (b, n, kv_heads, dim), (b, n, kv_heads, dim)]
    q, k, v = _KERNEL[0](
        inputs=[qkv, cos, sin],
        template=[
            ("T", qkv.dtype),
            ("B", b),
            ("L", n),
            ("H", heads),
            ("KV", kv_heads),
            ("D", dim),
        ],
        grid=(b * n * (heads + 2 * kv_heads) * dim, 1, 1),
        threadgroup=(256, 1, 1),
        output_shapes=shapes,
        output_dtypes=[qkv.dtype] * 3,
    )
    return q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)


def rope_qkv(
    qkv: mx.array, cos: mx.array, sin: mx.array, heads: int, kv_heads: int
) -> tuple[mx.array, mx.array, mx.array]:
    """`rope_qkv_ops`, by the CUDA kernel where `enable_kernel` found it good."""
    if _KERNEL and _KERNEL[1]:
        return _rope_kernel(qkv, cos, sin, heads, kv_heads)
    return rope_qkv_ops(qkv, cos, sin, heads, kv_heads)


def enable_kernel() -> bool:
    """On CUDA: build the kernel and check it against the ops on random inputs (both cos
    dtypes, grouped kv heads, odd lengths). False, and the ops stay, off CUDA or where it fails
    to build or to agree. Call outside `mx.compile` (it evaluates)."""
    if _KERNEL:
        return _KERNEL[1]
    if device_kind() != "gpu" or not hasattr(mx.fast, "cuda_kernel"):
        return False
    try:
        kernel = mx.fast.cuda_kernel(
            name="pnp_vision_rope_qkv",
            input_names=["qkv", "cos_t", "sin_t"],
            output_names=["q", "k", "v"],
            source=_SOURCE,
        )
        _KERNEL[:] = [kernel, False]
        worst = 0.0
        for heads, kv_heads, dim, table in ((4, 4, 80, mx.float32), (8, 2, 128, mx.bfloat16)):
            qkv = mx.random.normal((1, 37, (heads + 2 * kv_heads) * dim)).astype(mx.bfloat16)
            angles = mx.random.uniform(0, 30, (1, 37, dim))
            cos, sin = mx.cos(angles).astype(table), mx.sin(angles).astype(table)
            got = _rope_kernel(qkv, cos, sin, heads, kv_heads)
            want = rope_qkv_ops(qkv, cos, sin, heads, kv_heads)
            for g, w in zip(got, want, strict=True):
                diff = mx.abs(g.astype(mx.float32) - w.astype(mx.float32)).max().item()
                worst = max(worst, diff if g.shape == w.shape else float("inf"))
        _KERNEL[1] = worst <= 0.07  # |values| < ~6: bf16 ulps there are 0.03, two roundings
    except Exception:  # no NVRTC, a compile error: the ops stay
        _KERNEL[:] = [None, False]
    return _KERNEL[1]


def disable_kernel() -> None:
    """The ops from now on: training needs gradients, which the kernel has none of."""
    _KERNEL[:] = [None, False]


__all__ = ["disable_kernel", "enable_kernel", "rope_qkv", "rope_qkv_ops"]
