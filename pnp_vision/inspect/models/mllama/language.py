"""Llama 3.2 Vision language model (mlx-vlm's `mllama/language.py`): the text MLP on the fast
SiLU gate. mlx-vlm's `act_fn` is x * mx.sigmoid(x): on the CPU its exp runs unvectorised."""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from pnp_vision.inspect.fastmath import silu_mul


def text_mlp(self: Any, x: mx.array) -> mx.array:
    """`MllamaTextMLP.__call__`, the gate through `fastmath.silu_mul`."""
    return self.down_proj(silu_mul(self.gate_proj(x), self.up_proj(x)))
