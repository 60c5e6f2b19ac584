"""One small adapter per mlx-vlm architecture, named after its `model_type`.

An adapter knows the three things that differ between vision-language models here: how pixels
become vision features, how the image is laid out in the token sequence, and how the language
model is run over a slice of tokens on a KV cache (positions, cross-attention masks), and, where
it can (`packs_questions`), several questions in one packed pass. Everything else (templates,
prefix sharing, answer scoring) is generic in `scoring.py`.
"""

from __future__ import annotations

from typing import Any

from pnp_vision.errors import ModelLoadError
from pnp_vision.inspect.arch.base import Adapter, ImageInputs, PromptCache


def adapter_for(model: Any, processor: Any, config: dict[str, Any]) -> Adapter:
    model_type = config.get("model_type")
    if model_type == "qwen2_5_vl":
        from pnp_vision.inspect.arch.qwen2_5_vl import QwenVLAdapter

        return QwenVLAdapter(model, processor)
    if model_type == "mllama":
        from pnp_vision.inspect.arch.mllama import MllamaAdapter

        return MllamaAdapter(model, processor)
    raise ModelLoadError(f"no adapter for model_type {model_type!r}")


__all__ = ["Adapter", "ImageInputs", "PromptCache", "adapter_for"]
