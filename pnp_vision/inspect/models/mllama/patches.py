"""What Llama 3.2 Vision replaces in mlx-vlm: where `Runtime.fastmath` is on (the CPU), the
language model's attention, the text MLP, the vision MLP and the vision attention go through
`fastmath` (`language.py`, `vision.py`); anything these do not cover runs mlx-vlm's own code.
Nothing changes in the loaded model itself."""

from __future__ import annotations

from typing import Any

from mlx_vlm.models.mllama import language as mllama_lm
from mlx_vlm.models.mllama import vision as mllama_vision

from pnp_vision.inspect.models.mllama import language, vision
from pnp_vision.inspect.models.patching import Route, fast_sdpa
from pnp_vision.inspect.runtime import Runtime


def routes(runtime: Runtime) -> list[Route]:
    if not runtime.fastmath:
        return []
    return [
        Route(mllama_lm, "scaled_dot_product_attention", fast_sdpa),
        Route(mllama_lm.MllamaTextMLP, "__call__", lambda plain: language.text_mlp),
        Route(mllama_vision.MllamaVisionMLP, "__call__", lambda plain: vision.mlp),
        Route(mllama_vision.MllamaVisionAttention, "__call__", lambda plain: vision.attention),
    ]


def prepare(model: Any, runtime: Runtime) -> list[str]:
    return []
