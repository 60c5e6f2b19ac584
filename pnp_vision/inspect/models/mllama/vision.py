"""Llama 3.2 Vision tower (mlx-vlm's `mllama/vision.py`): its MLP on the fast exact GELU and
its attention on `fastmath.attention`, chunked (4 tiles are 6432 queries: an 11B layer would
otherwise hold 16 x 6432 x 6432 scores, 2.6 GB, several times over)."""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from pnp_vision.inspect.fastmath import attention as fast_attention
from pnp_vision.inspect.fastmath import gelu


def mlp(self: Any, hidden: mx.array) -> mx.array:
    """`MllamaVisionMLP.__call__`; the exact (erf) GELU by `fastmath.gelu`, others as they are."""
    hidden = self.fc1(hidden)
    exact = getattr(self.gelu, "_approx", None) == "none"  # nn.GELU(): the erf form
    return self.fc2(gelu(hidden) if exact else self.gelu(hidden))


def attention(self: Any, hidden: mx.array, attention_mask: mx.array | None = None) -> mx.array:
    """`MllamaVisionAttention.__call__` on `fastmath.attention` (tile padding mask kept)."""
    b, length, _ = hidden.shape
    q, k, v = (
        proj(hidden).reshape(b, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)
        for proj in (self.q_proj, self.k_proj, self.v_proj)
    )
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, : k.shape[-2], :]
    out = fast_attention(q, k, v, self.scale, attention_mask)
    return self.o_proj(out.transpose(0, 2, 1, 3).reshape(b, length, -1))
