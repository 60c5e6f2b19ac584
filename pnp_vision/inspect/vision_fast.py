"""A faster forward pass for mlx-vlm's Qwen2.5-VL vision tower, same weights, same numbers.

mlx-vlm runs window attention one window at a time: at 448x448 that is 16 windows x 28 windowed
layers = 448 attention calls, each with its own `mx.split`, plus host syncs (`.tolist()`,
`.item()`) to plan the windows on every call. Here the plan (window order, rotary angles,
gather/scatter indices) is computed once per image grid with numpy and cached, and each layer
runs all of its windows in one batched attention call: windows of equal length are a reshape,
unequal ones are padded to the longest and masked. The gated MLP activation is compiled into one
kernel; the rotary embedding is `rope.rope_qkv` (one CUDA kernel on GPUs).

Attention itself is pluggable (`VisionAttention`), because what is fast and what is safe differs
per backend: on CUDA, `mx.fast.scaled_dot_product_attention` with bf16 and head dim 80 goes to
cuDNN; "padded" pads the head dim to a multiple of 64 first (zero columns change neither QK^T nor
the kept part of the output); "matmul" spells attention out as two matmuls and a softmax.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from pnp_vision.inspect import fastmath, rope
from pnp_vision.inspect.rope import rope_qkv

ATTENTION_ENV = "PNP_VISION_VISION_ATTENTION"
COMPILE_ENV = "PNP_VISION_COMPILE"  # "1"/"0": compile whole forward passes (default: on GPUs)


def compile_default() -> bool:
    """Whole-pass `mx.compile`: on GPUs it removes most per-op launch and Python overhead (the
    vision tower is ~500 small kernels); on the CPU the arithmetic dominates and the first call
    would pay a C++ compile, so it stays off there unless PNP_VISION_COMPILE=1."""
    flag = os.environ.get(COMPILE_ENV)
    if flag is not None:
        return flag == "1"
    return mx.default_device().type == mx.DeviceType.gpu


class VisionAttention(StrEnum):
    SDPA = "sdpa"  # mx.fast.scaled_dot_product_attention on the head dim as it is
    PADDED = "padded"  # the same, with the head dim zero-padded to a multiple of 64
    MATMUL = "matmul"  # softmax(QK^T)V as plain ops


@dataclass(frozen=True)
class Segments:
    """How to cut a sequence into independent attention segments and put it back together."""

    count: int
    length: int  # longest segment; shorter ones are padded up to it
    gather: mx.array | None  # (count*length,) token index per padded slot; None: plain reshape
    scatter: mx.array | None  # (seq,) padded slot per token
    mask: mx.array | None  # (count, 1, 1, length) additive, -inf on padding keys


@dataclass(frozen=True)
class WindowPlan:
    window_index: mx.array  # merge-unit permutation into window order
    reverse_index: mx.array
    tiles: tuple[int, int, int, int] | None  # (frames, tile rows, tile side, tile columns)
    cos: mx.array  # (1, seq, head_dim) float32, in window order
    sin: mx.array
    windows: Segments
    images: Segments  # for the full-attention blocks: one segment per image (and frame)


def _segments(lengths: list[int]) -> Segments:
    """Plan batched attention over consecutive segments of the given lengths."""
    longest = max(lengths)
    if all(n == longest for n in lengths):
        return Segments(len(lengths), longest, None, None, None)
    gather = np.zeros((len(lengths), longest), dtype=np.int32)
    valid = np.zeros((len(lengths), longest), dtype=bool)
    scatter = np.zeros(sum(lengths), dtype=np.int32)
    start = 0
    for i, n in enumerate(lengths):
        gather[i, :n] = np.arange(start, start + n)
        valid[i, :n] = True
        scatter[start : start + n] = i * longest + np.arange(n)
        start += n
    mask = np.where(valid, 0.0, -np.inf).astype(np.float32)[:, None, None, :]
    return Segments(
        len(lengths), longest, mx.array(gather.reshape(-1)), mx.array(scatter), mx.array(mask)
    )


def _rotary_angles(grid: list[tuple[int, int, int]], merge: int, head_dim: int) -> np.ndarray:
    """Per-patch rotary angles (seq, head_dim // 2) in the processor's merge-block order."""
    inv_freq = 1.0 / (
        10000.0 ** (np.arange(0, head_dim // 2, 2, dtype=np.float32) / (head_dim // 2))
    )
    rows = []
    for t, h, w in grid:
        hh, ww = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")

        def blocks(a: np.ndarray, h: int = h, w: int = w) -> np.ndarray:
            return a.reshape(h // merge, merge, w // merge, merge).transpose(0, 2, 1, 3).ravel()

        pos = np.stack([blocks(hh), blocks(ww)], axis=-1)  # (h*w, 2)
        rows.append(np.tile(pos, (t, 1)))
    pos = np.concatenate(rows).astype(np.float32)
    return np.concatenate([np.outer(pos[:, 0], inv_freq), np.outer(pos[:, 1], inv_freq)], axis=-1)


def plan_windows(
    grid: list[tuple[int, int, int]], *, merge: int, patch: int, window: int, head_dim: int
) -> WindowPlan:
    """Window order, rotary tables and batched-attention plans for one set of image grids."""
    unit = merge * merge
    per_window = window // merge // patch  # merge units along one side of a window
    order: list[np.ndarray] = []
    lengths: list[int] = []
    offset = 0
    for t, h, w in grid:
        gh, gw = h // merge, w // merge
        ph, pw = -gh % per_window, -gw % per_window
        index = np.arange(t * gh * gw).reshape(t, gh, gw)
        padded = np.pad(index, ((0, 0), (0, ph), (0, pw)), constant_values=-1)
        nh, nw = (gh + ph) // per_window, (gw + pw) // per_window
        tiles = padded.reshape(t, nh, per_window, nw, per_window).transpose(0, 1, 3, 2, 4)
        tiles = tiles.reshape(t * nh * nw, per_window * per_window)
        for tile in tiles:
            kept = tile[tile >= 0]
            if kept.size:
                order.append(kept + offset)
                lengths.append(int(kept.size) * unit)
        offset += t * gh * gw
    window_index = np.concatenate(order)
    angles = _rotary_angles(grid, merge, head_dim)  # (seq, head_dim // 2)
    angles = angles.reshape(-1, unit, angles.shape[-1])[window_index].reshape(-1, angles.shape[-1])
    angles = np.concatenate([angles, angles], axis=-1)[None]
    images = [h * w for t, h, w in grid for _ in range(t)]
    t, gh, gw = grid[0][0], grid[0][1] // merge, grid[0][2] // merge
    whole = len(grid) == 1 and gh % per_window == 0 and gw % per_window == 0
    tiles = (t, gh // per_window, per_window, gw // per_window) if whole else None
    return WindowPlan(
        window_index=mx.array(window_index.astype(np.int32)),
        reverse_index=mx.array(np.argsort(window_index).astype(np.int32)),
        tiles=tiles,
        cos=mx.array(np.cos(angles)),
        sin=mx.array(np.sin(angles)),
        windows=_segments(lengths),
        images=_segments(images),
    )


@mx.compile
def _swiglu_exact(gate: mx.array, up: mx.array) -> mx.array:
    return gate * mx.sigmoid(gate) * up


def _swiglu(gate: mx.array, up: mx.array) -> mx.array:
    return fastmath.silu(gate) * up if fastmath.enabled() else _swiglu_exact(gate, up)


def _attend(
    q: mx.array, k: mx.array, v: mx.array, mask: mx.array | None, scale: float, how: VisionAttention
) -> mx.array:
    """Attention over (batch, heads, length, head_dim)."""
    if how is VisionAttention.MATMUL:
        if fastmath.enabled():
            return fastmath.attention(q, k, v, scale, mask)
        scores = (q * scale) @ k.swapaxes(-1, -2)
        if mask is not None:
            scores = scores + mask.astype(scores.dtype)
        weights = mx.softmax(scores.astype(mx.float32), axis=-1).astype(v.dtype)
        return weights @ v
    if mask is not None:
        mask = mask.astype(q.dtype)
    if how is VisionAttention.PADDED:
        head_dim = q.shape[-1]
        pad = -head_dim % 64
        if pad:
            widths = [(0, 0)] * 3 + [(0, pad)]
            q, k, v = (mx.pad(a, widths) for a in (q, k, v))
            out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
            return out[..., :head_dim]
    return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)


def _on_cpu() -> bool:
    return mx.default_device().type == mx.DeviceType.cpu


def _segment_attention(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    seg: Segments,
    scale: float,
    how: VisionAttention,
    split_eval: bool = False,
) -> mx.array:
    """q, k, v: (seq, heads, head_dim) -> (seq, heads * head_dim), attention within segments."""
    heads, head_dim = q.shape[1:]

    def batch(a: mx.array) -> mx.array:
        if seg.gather is not None:
            a = a[seg.gather]
        return a.reshape(seg.count, seg.length, heads, head_dim).transpose(0, 2, 1, 3)

    if seg.count > 1 and split_eval:
        # many tiny GEMMs: evaluate them on one BLAS thread (see backend.blas_threads)
        from pnp_vision.inspect.backend import blas_threads

        qb, kb, vb = batch(q), batch(k), batch(v)
        mx.eval(qb, kb, vb)
        with blas_threads(1):
            out = _attend(qb, kb, vb, seg.mask, scale, how)
            mx.eval(out)
    else:
        out = _attend(batch(q), batch(k), batch(v), seg.mask, scale, how)
    out = out.transpose(0, 2, 1, 3).reshape(seg.count * seg.length, heads * head_dim)
    return out if seg.scatter is None else out[seg.scatter]


def _block(
    blk: Any,
    x: mx.array,
    plan: WindowPlan,
    seg: Segments,
    how: VisionAttention,
    split_eval: bool = False,
) -> mx.array:
    attn = blk.attn
    h = mx.fast.rms_norm(x, blk.norm1.weight, blk.norm1.eps)
    heads = attn.num_heads
    qkv = attn.qkv(h)
    # squeeze, not [0]: MLX indexes with an integer by a gather (a copy kernel each, ~23 us)
    rotated = rope_qkv(qkv[None], plan.cos, plan.sin, heads, heads)
    q, k, v = (a.squeeze(0).swapaxes(0, 1) for a in rotated)
    x = x + attn.proj(_segment_attention(q, k, v, seg, attn.scale, how, split_eval))
    h = mx.fast.rms_norm(x, blk.norm2.weight, blk.norm2.eps)
    mlp = blk.mlp
    return x + mlp.down_proj(_swiglu(mlp.gate_proj(h), mlp.up_proj(h)))


def default_attention() -> VisionAttention:
    """The attention variant for this process: PNP_VISION_VISION_ATTENTION, else MATMUL where
    fastmath is on (on the CPU MLX's SDPA is the same ops with the slow exp), else SDPA."""
    fallback = VisionAttention.MATMUL if fastmath.enabled() else VisionAttention.SDPA
    return VisionAttention(os.environ.get(ATTENTION_ENV, fallback.value))


def fast_forward(
    tower: Any,
    hidden_states: mx.array,
    grid_thw: mx.array,
    output_hidden_states: bool | None = None,
    *,
    attention: VisionAttention | None = None,
) -> mx.array:
    """Drop-in replacement for `VisionModel.__call__` (qwen2_5_vl); returns merged features."""
    if output_hidden_states:
        raise ValueError("the fast vision path does not return per-layer hidden states")
    how = attention or tower._fast_attention
    grid = tuple(tuple(int(v) for v in row) for row in np.array(grid_thw).tolist())
    plan = _cached_plan(tower, grid)
    if tower._fast_compile and attention is None:
        key = (grid, how)
        compiled: dict = tower._fast_compiled
        if key not in compiled:
            compiled[key] = mx.compile(functools.partial(_tower_pass, tower, plan, how))
        return compiled[key](hidden_states)
    return _tower_pass(tower, plan, how, hidden_states, split_eval=_on_cpu())


def _patch_embed(embed: Any, pixels: mx.array) -> mx.array:
    """mlx-vlm's Conv3d patch embedding as the matmul it is (its kernel covers the whole patch):
    3x faster on the CPU. The weight (out, T, P, P, C) is put in the pixels' (C, T, P, P) order."""
    weight = embed.proj.weight
    weight = weight.transpose(0, 4, 1, 2, 3).reshape(weight.shape[0], -1)
    out = pixels.reshape(pixels.shape[0], -1).astype(weight.dtype) @ weight.T
    return out + embed.proj.bias if "bias" in embed.proj else out


def _tower_pass(
    tower: Any,
    plan: WindowPlan,
    how: VisionAttention,
    hidden_states: mx.array,
    split_eval: bool = False,
) -> mx.array:
    """The whole tower. `split_eval` (CPU, never inside mx.compile) evaluates the window
    attention on its own, on one BLAS thread."""
    x = _patch_embed(tower.patch_embed, hidden_states)
    x = _to_windows(x, plan, tower.spatial_merge_unit)
    full = set(tower.fullatt_block_indexes)
    for i, blk in enumerate(tower.blocks):
        seg = plan.images if i in full else plan.windows
        x = _block(blk, x, plan, seg, how, split_eval)
    return _from_windows(tower.merger(x), plan)


def _to_windows(x: mx.array, plan: WindowPlan, unit: int) -> mx.array:
    """Patches (merge-block order) into window order. Where windows tile the image exactly
    that is a transpose (one copy kernel, ~5 us on an H200) instead of a gather."""
    width = x.shape[-1]
    if plan.tiles is None:
        return x.reshape(-1, unit, width)[plan.window_index].reshape(-1, width)
    t, rows, side, cols = plan.tiles
    x = x.reshape(t, rows, side, cols, side, unit * width).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, width)


def _from_windows(y: mx.array, plan: WindowPlan) -> mx.array:
    """Merged features (one row per merge unit) back from window order: `_to_windows` undone."""
    if plan.tiles is None:
        return y[plan.reverse_index]
    t, rows, side, cols = plan.tiles
    y = y.reshape(t, rows, cols, side, side, y.shape[-1]).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(-1, y.shape[-1])


def _cached_plan(tower: Any, grid: tuple[tuple[int, int, int], ...]) -> WindowPlan:
    plans: dict = tower._fast_plans
    if grid not in plans:
        cfg = tower.config
        plans[grid] = plan_windows(
            [tuple(g) for g in grid],
            merge=tower.spatial_merge_size,
            patch=tower.patch_size,
            window=tower.window_size,
            head_dim=cfg.hidden_size // cfg.num_heads,
        )
    return plans[grid]


def is_qwen25_vision(tower: Any) -> bool:
    return type(tower).__module__.endswith("qwen2_5_vl.vision") and hasattr(tower, "blocks")


def pad_mlp(tower: Any, multiple: int = 64) -> int:
    """Zero-pad every block's MLP hidden width up to a multiple of `multiple`; returns the new
    width (0: nothing to do, or not plain float Linear layers). Qwen2.5-VL's is 3420, not even
    a multiple of 8: cuBLAS then takes 2-element-aligned sm80 kernels for gate, up and down, 4.4
    of the tower's 8.6 ms of kernels on an H200. Padded units are silu(0) * 0 = 0 and meet zero
    columns of down_proj, so the output is the same, in mlx-vlm's own forward too."""
    layers = [(b.mlp.gate_proj, b.mlp.up_proj, b.mlp.down_proj) for b in tower.blocks]
    if not layers or any(type(m) is not nn.Linear for trio in layers for m in trio):
        return 0
    width = layers[0][0].weight.shape[0]
    pad = -width % multiple
    if not pad:
        return 0
    for gate, up, down in layers:
        for lin in (gate, up):
            lin.weight = mx.pad(lin.weight, [(0, pad), (0, 0)])
            if "bias" in lin:
                lin.bias = mx.pad(lin.bias, [(0, pad)])
        down.weight = mx.pad(down.weight, [(0, 0), (0, pad)])
        mx.eval(gate.parameters(), up.parameters(), down.parameters())
    return width + pad


def install_fast_vision(
    model: Any, attention: VisionAttention | None = None, compile: bool | None = None
) -> bool:
    """Route `model.vision_tower(...)` through `fast_forward`. False where the model has no
    Qwen2.5-VL vision tower (nothing is changed then). Call after the weights are final: a
    compiled pass keeps the arrays it was traced with. On GPUs the MLP widths are padded
    (`pad_mlp`) and q/k rotated by one CUDA kernel where it builds and agrees (`rope`)."""
    tower = getattr(model, "vision_tower", None)
    if tower is None or not is_qwen25_vision(tower):
        return False
    if mx.default_device().type == mx.DeviceType.gpu:
        pad_mlp(tower)
        rope.enable_kernel()
    # Instance attributes go through object.__setattr__: nn.Module would treat them as children.
    object.__setattr__(tower, "_fast_plans", {})
    object.__setattr__(tower, "_fast_attention", attention or default_attention())
    object.__setattr__(tower, "_fast_compile", compile_default() if compile is None else compile)
    object.__setattr__(tower, "_fast_compiled", {})
    cls = type(tower)
    if not getattr(cls, "_pnp_fast_patched", False):
        plain = cls.__call__

        @functools.wraps(plain)
        def dispatch(self: Any, *args: Any, **kwargs: Any) -> mx.array:
            if self.__dict__.get("_fast_plans") is not None:
                return fast_forward(self, *args, **kwargs)
            return plain(self, *args, **kwargs)

        cls.__call__ = dispatch
        cls._pnp_fast_patched = True
    return True


def uninstall_fast_vision(model: Any) -> None:
    """Back to mlx-vlm's own forward for this model (the class hook stays, inert)."""
    tower = getattr(model, "vision_tower", None)
    if tower is not None and "_fast_plans" in tower.__dict__:
        object.__setattr__(tower, "_fast_plans", None)


def plain_forward(tower: Any, *args: Any, **kwargs: Any) -> mx.array:
    """mlx-vlm's unmodified forward, for comparisons."""
    cls = type(tower)
    original = getattr(cls.__call__, "__wrapped__", cls.__call__)
    return original(tower, *args, **kwargs)


__all__ = [
    "VisionAttention",
    "WindowPlan",
    "fast_forward",
    "install_fast_vision",
    "plain_forward",
    "plan_windows",
    "uninstall_fast_vision",
]
