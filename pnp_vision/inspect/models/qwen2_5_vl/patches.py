"""What Qwen2.5-VL replaces in mlx-vlm, and what it changes in one loaded model.

Routes (installed by `patching.py`): the vision tower's `VisionModel.__call__` runs the tower's
`FastVision` (the batched-window pass) where it has one, mlx-vlm's own forward otherwise; where
`Runtime.fastmath` is on (the CPU), the SwiGLU of the MLPs and the language model's attention go
through `fastmath`. In the model (`prepare`): the fast vision tower, and on GPUs the vision MLP
padded to an aligned width, q/k rotated by one CUDA kernel and, where compiling, the language
projections fused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlx_vlm.models import mlp as vlm_mlp
from mlx_vlm.models.qwen2_5_vl import language as qwen_lm
from mlx_vlm.models.qwen2_5_vl.vision import VisionModel

from pnp_vision.inspect import rope
from pnp_vision.inspect.models.patching import Route, fast_sdpa, fast_swiglu
from pnp_vision.inspect.models.qwen2_5_vl import language, vision
from pnp_vision.inspect.runtime import Runtime


def fast_tower(plain: Callable[..., Any]) -> Callable[..., Any]:
    """`VisionModel.__call__` by the tower's `FastVision`, where `vision.install` gave it one."""

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        fast = vision.FastVision.of(self)
        return fast(*args, **kwargs) if fast is not None else plain(self, *args, **kwargs)

    return __call__


def routes(runtime: Runtime) -> list[Route]:
    out = [Route(VisionModel, "__call__", fast_tower)]
    if runtime.fastmath:
        out += [
            Route(vlm_mlp, "swiglu", fast_swiglu),
            Route(qwen_lm, "scaled_dot_product_attention", fast_sdpa),
        ]
    return out


def prepare(model: Any, runtime: Runtime) -> list[str]:
    """Give `model` its fast vision tower (and on GPUs its aligned and fused weights); notes.
    Call after the weights are final: a compiled pass keeps the arrays it was traced with."""
    if not isinstance(getattr(model, "vision_tower", None), VisionModel):
        return []
    tower = model.vision_tower
    if runtime.device == "gpu":
        vision.pad_mlp(tower)
        rope.enable_kernel()
    vision.install(model, runtime)
    notes = []
    if runtime.compile and language.fuse(model.language_model, runtime.merge_adapters):
        notes.append("language q/k/v and gate/up projections fused")
    notes.append(
        f"fast vision on, MLP width {tower.blocks[0].mlp.gate_proj.weight.shape[0]}"
        + ("; q/k rotated by one CUDA kernel" if rope.enable_kernel() else "")
    )
    return notes
