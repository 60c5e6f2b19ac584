"""Qwen2.5-VL vision tower (mlx-vlm's `qwen2_5_vl/vision.py`): a faster forward, same numbers.

mlx-vlm runs window attention one window at a time: at 448x448 that is 16 windows x 28 windowed
layers = 448 attention calls, each with its own `mx.split`, plus host syncs (`.tolist()`,
`.item()`) to plan the windows on every call. Here the plan (window order, rotary angles,
gather/scatter indices) is computed once per image grid with numpy and cached, and each layer
runs all of its windows in one batched attention call: windows of equal length are a reshape,
unequal ones are padded to the longest and masked. The gated MLP activation is compiled into one
kernel; the rotary embedding is `rope.rope_qkv` (one CUDA kernel on GPUs). `FastVision` holds one
tower's plans and compiled passes; `patches.py` routes `VisionModel.__call__` to it.

Attention itself is pluggable (`VisionAttention`), because what is fast and what is safe differs
per backend: on CUDA, `mx.fast.scaled_dot_product_attention` with bf16 and head dim 80 goes to
cuDNN; "padded" pads the head dim to a multiple of 64 first (zero columns change neither QK^T nor
the kept part of the output); "matmul" spells attention out as two matmuls and a softmax.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx_vlm.models.qwen2_5_vl.vision import VisionModel

from pnp_vision.inspect import fastmath
from pnp_vision.inspect.models.base import PerModule
from pnp_vision.inspect.rope import rope_qkv
from pnp_vision.inspect.runtime import Runtime, blas_threads


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
    # Images of one grid (a batch) lie one after another like the frames of one image.
    t, gh, gw = sum(g[0] for g in grid), grid[0][1] // merge, grid[0][2] // merge
    alike = all(tuple(g[1:]) == tuple(grid[0][1:]) for g in grid)
    whole = alike and gh % per_window == 0 and gw % per_window == 0
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


def _swiglu(gate: mx.array, up: mx.array, fast_exp: bool) -> mx.array:
    return fastmath.silu(gate) * up if fast_exp else _swiglu_exact(gate, up)


def _attend(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    mask: mx.array | None,
    scale: float,
    how: VisionAttention,
    fast_exp: bool,
) -> mx.array:
    """Attention over (batch, heads, length, head_dim)."""
    if how is VisionAttention.MATMUL:
        if fast_exp:
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


def _segment_attention(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    seg: Segments,
    scale: float,
    how: VisionAttention,
    fast_exp: bool,
    split_eval: bool,
) -> mx.array:
    """q, k, v: (seq, heads, head_dim) -> (seq, heads * head_dim), attention within segments."""
    heads, head_dim = q.shape[1:]

    def batch(a: mx.array) -> mx.array:
        if seg.gather is not None:
            a = a[seg.gather]
        return a.reshape(seg.count, seg.length, heads, head_dim).transpose(0, 2, 1, 3)

    if seg.count > 1 and split_eval:
        # many tiny GEMMs: evaluate them on one BLAS thread (see runtime.blas_threads)
        qb, kb, vb = batch(q), batch(k), batch(v)
        mx.eval(qb, kb, vb)
        with blas_threads(1):
            out = _attend(qb, kb, vb, seg.mask, scale, how, fast_exp)
            mx.eval(out)
    else:
        out = _attend(batch(q), batch(k), batch(v), seg.mask, scale, how, fast_exp)
    out = out.transpose(0, 2, 1, 3).reshape(seg.count * seg.length, heads * head_dim)
    return out if seg.scatter is None else out[seg.scatter]


def _block(
    blk: Any,
    x: mx.array,
    plan: WindowPlan,
    seg: Segments,
    how: VisionAttention,
    fast_exp: bool,
    split_eval: bool,
) -> mx.array:
    attn = blk.attn
    h = mx.fast.rms_norm(x, blk.norm1.weight, blk.norm1.eps)
    heads = attn.num_heads
    qkv = attn.qkv(h)
    # squeeze, not [0]: MLX indexes with an integer by a gather (a copy kernel each, ~23 us)
    rotated = rope_qkv(qkv[None], plan.cos, plan.sin, heads, heads)
    q, k, v = (a.squeeze(0).swapaxes(0, 1) for a in rotated)
    out = _segment_attention(q, k, v, seg, attn.scale, how, fast_exp, split_eval)
    x = x + attn.proj(out)
    h = mx.fast.rms_norm(x, blk.norm2.weight, blk.norm2.eps)
    mlp = blk.mlp
    return x + mlp.down_proj(_swiglu(mlp.gate_proj(h), mlp.up_proj(h), fast_exp))


def _patch_embed(embed: Any, pixels: mx.array) -> mx.array:
    """mlx-vlm's Conv3d patch embedding as the matmul it is (its kernel covers the whole patch):
    3x faster on the CPU. The weight (out, T, P, P, C) is put in the pixels' (C, T, P, P) order."""
    weight = embed.proj.weight
    weight = weight.transpose(0, 4, 1, 2, 3).reshape(weight.shape[0], -1)
    out = pixels.reshape(pixels.shape[0], -1).astype(weight.dtype) @ weight.T
    return out + embed.proj.bias if "bias" in embed.proj else out


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


_TOWERS: PerModule[FastVision] = PerModule()  # tower -> its fast path (see `install`)


class FastVision:
    """The batched-window forward of one Qwen2.5-VL vision tower, with its per-grid window plans
    and (where compiling) one compiled pass per grid. Call after the weights are final: a
    compiled pass keeps the arrays it was traced with."""

    def __init__(
        self,
        tower: Any,
        runtime: Runtime,
        attention: VisionAttention | None = None,
        compiled: bool | None = None,
    ) -> None:
        self._tower = weakref.ref(tower)  # the registry must not keep a dropped model alive
        self.fast_exp = runtime.fastmath
        # on the CPU MLX's SDPA is the same ops with the slow exp: MATMUL where fastmath is on
        fallback = VisionAttention.MATMUL if runtime.fastmath else VisionAttention.SDPA
        self.attention = attention or VisionAttention(runtime.vision_attention or fallback)
        # Whole-pass mx.compile: on GPUs it removes most per-op launch and Python overhead (the
        # tower is ~500 small kernels); on the CPU the arithmetic dominates and the first call
        # would pay a C++ compile.
        self.compiled = runtime.compile if compiled is None else compiled
        self.split_eval = runtime.device == "cpu"
        self.plans: dict[tuple[tuple[int, int, int], ...], WindowPlan] = {}
        self._passes: dict[tuple[tuple[int, int, int], ...], Any] = {}

    @property
    def tower(self) -> Any:
        return self._tower()

    def weights_changed(self) -> None:
        """Drop the compiled passes: they hold the weights they were traced with (a template's
        own weights swapped in, `template_weights.py`); the next call traces them again."""
        self._passes.clear()

    @staticmethod
    def of(tower: Any) -> FastVision | None:
        """The fast path installed for `tower`, if any."""
        return _TOWERS.get(tower)

    def plan(self, grid: tuple[tuple[int, int, int], ...]) -> WindowPlan:
        if grid not in self.plans:
            tower, cfg = self.tower, self.tower.config
            self.plans[grid] = plan_windows(
                [tuple(g) for g in grid],
                merge=tower.spatial_merge_size,
                patch=tower.patch_size,
                window=tower.window_size,
                head_dim=cfg.hidden_size // cfg.num_heads,
            )
        return self.plans[grid]

    def __call__(
        self, hidden_states: mx.array, grid_thw: mx.array, output_hidden_states: bool | None = None
    ) -> mx.array:
        """`VisionModel.__call__`'s signature and result (merged features)."""
        if output_hidden_states:
            raise ValueError("the fast vision path does not return per-layer hidden states")
        grid = tuple(tuple(int(v) for v in row) for row in np.array(grid_thw).tolist())
        plan = self.plan(grid)
        if self.compiled:
            if grid not in self._passes:
                self._passes[grid] = mx.compile(functools.partial(self.tower_pass, plan))
            return self._passes[grid](hidden_states)
        return self.tower_pass(plan, hidden_states, split_eval=self.split_eval)

    def tower_pass(
        self, plan: WindowPlan, hidden_states: mx.array, split_eval: bool = False
    ) -> mx.array:
        """The whole tower. `split_eval` (CPU, never inside mx.compile or a gradient) evaluates
        the window attention on its own, on one BLAS thread."""
        tower = self.tower
        x = _patch_embed(tower.patch_embed, hidden_states)
        x = _to_windows(x, plan, tower.spatial_merge_unit)
        full = set(tower.fullatt_block_indexes)
        for i, blk in enumerate(tower.blocks):
            seg = plan.images if i in full else plan.windows
            x = _block(blk, x, plan, seg, self.attention, self.fast_exp, split_eval)
        return _from_windows(tower.merger(x), plan)


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


def install(
    model: Any,
    runtime: Runtime,
    attention: VisionAttention | None = None,
    compiled: bool | None = None,
) -> FastVision | None:
    """Give `model.vision_tower` a `FastVision` (what the patched `VisionModel.__call__` runs);
    None where the model has no Qwen2.5-VL vision tower."""
    tower = getattr(model, "vision_tower", None)
    if not isinstance(tower, VisionModel):
        return None
    fast = FastVision(tower, runtime, attention, compiled)
    _TOWERS.set(tower, fast)
    return fast


def uninstall(model: Any) -> None:
    """Back to mlx-vlm's own forward for this model (the class route stays, passing through)."""
    _TOWERS.pop(getattr(model, "vision_tower", None))


def plain_forward(tower: Any, *args: Any, **kwargs: Any) -> mx.array:
    """mlx-vlm's unmodified forward, for comparisons."""
    from pnp_vision.inspect.models import patching

    return patching.original(VisionModel, "__call__")(tower, *args, **kwargs)


__all__ = [
    "FastVision",
    "VisionAttention",
    "WindowPlan",
    "install",
    "pad_mlp",
    "plain_forward",
    "plan_windows",
    "uninstall",
]
