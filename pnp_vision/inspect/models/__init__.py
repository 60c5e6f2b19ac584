"""One package per mlx-vlm architecture, named after its `model_type` and laid out like
mlx-vlm's own `mlx_vlm/models/<arch>/`, so an mlx-vlm upgrade diff maps file to file:

    <arch>/adapter.py   how the engine drives the model (image prep, layout, forward passes)
    <arch>/vision.py    our faster vision tower paths, where there are any
    <arch>/language.py  our language-model passes, where there are any
    <arch>/patches.py   every mlx-vlm name this architecture rebinds (installed by patching.py)

An adapter knows the three things that differ between vision-language models here: how pixels
become vision features, how the image is laid out in the token sequence, and how the language
model is run over a slice of tokens on a KV cache (positions, cross-attention masks), and, where
it can (`packs_questions`), several questions in one packed pass. Everything else (templates,
prefix sharing, answer scoring) is generic in `scoring.py`. Only the architecture being loaded
is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

from pnp_vision.errors import ModelLoadError
from pnp_vision.inspect.models.base import Adapter, ImageInputs, PromptCache
from pnp_vision.inspect.runtime import Runtime

ARCHITECTURES = ("qwen2_5_vl", "mllama")


def adapter_for(model: Any, processor: Any, config: dict[str, Any], runtime: Runtime) -> Adapter:
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ModelLoadError(f"no adapter for model_type {model_type!r}")
    module = importlib.import_module(f"pnp_vision.inspect.models.{model_type}.adapter")
    return module.ADAPTER(model, processor, runtime)


__all__ = ["ARCHITECTURES", "Adapter", "ImageInputs", "PromptCache", "adapter_for"]
