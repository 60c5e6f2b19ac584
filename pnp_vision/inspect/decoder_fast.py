"""Qwen2-VL / Qwen2.5-VL decoder layers with fused projections, for the compiled passes (GPUs).

mlx-vlm's layer runs q, k and v as three matmuls and gate and up as two, and rotates q and k
with 8 small kernels. On an H200 (7B, 304 tokens) the k and v matmuls run at ~110 TFLOP/s
against ~600 for the big ones, and the rotation costs ~30 us a layer. `fuse` concatenates each
layer's q/k/v and gate/up weights once and re-points mlx-vlm's own Linear layers at slices of
them (no extra memory; its forward is unchanged); `decoder_pass` then runs a layer as: norm,
one q/k/v matmul, one rotation kernel (`rope.rope_qkv`), attention, o, norm, one gate/up
matmul, SwiGLU, down. Attention and SwiGLU are looked up in mlx-vlm's modules at call time, so
`fastmath`'s CPU routes apply here too.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn

from pnp_vision.inspect.rope import rope_qkv


def _slices(fused: mx.array, sizes: list[int]) -> list[mx.array]:
    out, start = [], 0
    for n in sizes:
        out.append(fused[start : start + n])
        start += n
    return out


def fuse(lm: Any) -> bool:
    """Fuse every decoder layer's q/k/v and gate/up projections (plain float Linear layers
    only; a quantized or otherwise different layer leaves the model as it is). True if done."""
    layers = getattr(getattr(lm, "model", None), "layers", None)
    if not layers:
        return False
    if lm.__dict__.get("_pnp_fused"):
        return True
    for layer in layers:
        a, m = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        names = ("q_proj", "k_proj", "v_proj")
        if a is None or m is None or not hasattr(a, "rotary_emb"):
            return False
        parts = [getattr(a, n, None) for n in names]
        parts += [getattr(m, n, None) for n in ("gate_proj", "up_proj", "down_proj")]
        if any(type(p) is not nn.Linear for p in parts):
            return False
        if len({"bias" in p for p in parts[:3]}) != 1 or any("bias" in p for p in parts[3:5]):
            return False
    for layer in layers:
        a, m = layer.self_attn, layer.mlp
        projs = [a.q_proj, a.k_proj, a.v_proj]
        sizes = [p.weight.shape[0] for p in projs]
        weight = mx.concatenate([p.weight for p in projs])
        bias = mx.concatenate([p.bias for p in projs]) if "bias" in a.q_proj else None
        gate_up = mx.concatenate([m.gate_proj.weight, m.up_proj.weight])
        mx.eval(weight, gate_up, *([] if bias is None else [bias]))
        for p, w in zip(projs, _slices(weight, sizes), strict=True):
            p.weight = w
        if bias is not None:
            for p, b in zip(projs, _slices(bias, sizes), strict=True):
                p.bias = b
        width = m.gate_proj.weight.shape[0]
        m.gate_proj.weight, m.up_proj.weight = _slices(gate_up, [width, width])
        mx.eval(a.parameters(), m.parameters())
        object.__setattr__(a, "_pnp_qkv", (weight, bias))
        object.__setattr__(m, "_pnp_gate_up", gate_up)
    object.__setattr__(lm, "_pnp_fused", True)
    return True


def decoder_pass(
    lm: Any, embeds: mx.array, positions: mx.array, mask: mx.array | None = None
) -> mx.array:
    """`lm.model(None, inputs_embeds=embeds, mask=mask, position_ids=positions)` (no cache)
    on the fused weights: hidden states after the final norm. Needs `fuse(lm)` first."""
    from mlx_vlm.models import mlp as vlm_mlp
    from mlx_vlm.models.qwen2_5_vl import language as qwen_lm

    model = lm.model
    h = embeds
    batch, length, _ = h.shape
    cos, sin = model.layers[0].self_attn.rotary_emb(h, positions)  # (B, L, D), mlx-vlm's own
    attend_mask = "causal" if mask is None else mask
    for layer in model.layers:
        a, m = layer.self_attn, layer.mlp
        weight, bias = a._pnp_qkv
        x = layer.input_layernorm(h)
        qkv = x @ weight.T if bias is None else mx.addmm(bias, x, weight.T)
        q, k, v = rope_qkv(qkv, cos, sin, a.n_heads, a.n_kv_heads)
        out = qwen_lm.scaled_dot_product_attention(q, k, v, None, scale=a.scale, mask=attend_mask)
        h = h + a.o_proj(out.transpose(0, 2, 1, 3).reshape(batch, length, -1))
        gate_up = layer.post_attention_layernorm(h) @ m._pnp_gate_up.T
        width = gate_up.shape[-1] // 2
        h = h + m.down_proj(vlm_mlp.swiglu(gate_up[..., :width], gate_up[..., width:]))
    return model.norm(h)


__all__ = ["decoder_pass", "fuse"]
