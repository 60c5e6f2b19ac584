"""Weight adapters: a template's own weights, swapped into the resident base while it answers.

`pnp-vision train` fine-tunes the small inspector for the templates a rig's labels teach and
keeps what it trained as a *weight patch* (each tensor it trained, as its change from the
base) in an adapter folder of kind `weights` inside the new model folder, beside base weights
it never changes. The worker routes each taught template to its adapter
(`adapters.own_adapters`: no settings needed), and `adapters.AdapterSet` swaps the patch in
only for that template's questions, so a template the fine-tune did not teach answers exactly
as the base folder does: teaching one check cannot harm another (issue 32: a fine-tune of the
shared weights took feeder_pocket_empty from 100% to 63%, still marked learned).

Why whole tensors rather than LoRA: the small inspector is 4 MB, so a patch of what it trains
is at most 2 MB (float16), and can adapt the vision tower to a foreign look, which a language
model LoRA cannot. Real models keep LoRA adapters (`adapters.py` serves both kinds).

An adapter folder of this kind (inside a model folder: `adapters/NAME/`; `teach/train.py`
writes it):

    pnp_adapter.json      {"format": 1, "kind": "weights", "base": {...}, "templates": [...],
                           "report": {...}}   (as a LoRA adapter's, plus "kind")
    weights.safetensors   the patch: parameter name (as the model names it) -> tensor; with
                          metadata `encoding: delta-f16`, each tensor is the trained one minus
                          the base's, in float16 (half the bytes: a folder of four adapters stays
                          under 20 MB); without it, the trained tensor whole

Why a float16 delta is enough: it rounds each weight's *change* to 11 significant bits. On the
bundled folder's adapters that moved no weight by more than 2e-4 of its tensor's largest (the
bfloat16 GPUs run the weights in rounds by up to 4e-3) and no answer's probability by more than
5e-5. The base fingerprint pins the base the deltas apply to.

A swap rebinds parameter arrays in place and keeps the base's own arrays to put back. What the
engine built from the weights is made again after a swap, or it would answer with the old
arrays: compiled vision passes and fused language projections (GPUs; CPUs make neither).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pnp_vision.errors import ConfigError

log = logging.getLogger(__name__)

ADAPTERS_DIR = "adapters"  # a model folder's own adapters, one folder each
KIND = "weights"
PATCH_FILE = "weights.safetensors"
DELTA = "delta-f16"  # weights.safetensors' `encoding` when it holds float16 deltas


def encode_patch(trained: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """What a patch file holds for `trained` over `base` (same names): float16 deltas."""
    import mlx.core as mx

    return {
        k: (v.astype(mx.float32) - base[k].astype(mx.float32)).astype(mx.float16)
        for k, v in trained.items()
    }


def decode_patch(stored: Any, base: Any) -> Any:
    """A trained tensor from its stored delta and the base's tensor, in the base's dtype."""
    import mlx.core as mx

    return (base.astype(mx.float32) + stored.astype(mx.float32)).astype(base.dtype)


def _owner(model: Any, key: str) -> tuple[Any, str]:
    """The module holding parameter `key`, and the parameter's name in it."""
    *path, leaf = key.split(".")
    node = model
    try:
        for part in path:
            node = node[int(part)] if isinstance(node, list) else getattr(node, part)
    except (AttributeError, IndexError, ValueError) as exc:
        raise KeyError(key) from exc
    if not hasattr(node, "keys") or leaf not in node:
        raise KeyError(key)
    return node, leaf


class WeightSwap:
    """Weight patches of one loaded model, and which one is in place (None: the base's)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._patches: dict[str, dict[str, Any]] = {}  # name -> parameter -> array
        self._base: dict[str, Any] = {}  # parameter -> the base's own array
        self._owners: dict[str, tuple[Any, str]] = {}
        self.active: str | None = None

    @property
    def names(self) -> list[str]:
        return list(self._patches)

    def add(self, name: str, path: Path) -> None:
        """Read patch `name` from a weights file (with the base's arrays in place)."""
        import mlx.core as mx

        if self.active is not None:
            raise RuntimeError("patches are added while the base's weights are in place")
        try:
            tensors, meta = mx.load(str(path), return_metadata=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{path}: unreadable weights: {exc}") from exc
        delta = meta.get("encoding") == DELTA
        self._patches[name] = {k: self._fit(path, k, v, delta) for k, v in tensors.items()}

    def _fit(self, path: Path, key: str, value: Any, delta: bool) -> Any:
        """`value` as the live parameter is held: its dtype, and zero-padded where the engine
        padded the parameter (`vision.pad_mlp` on GPUs: padded units are zero); a delta is
        added to the base's array, which is in place while patches are added."""
        import mlx.core as mx

        try:
            owner, leaf = self._owners.get(key) or _owner(self._model, key)
        except KeyError:
            raise ConfigError(f"{path}: {key} is not a parameter of this model") from None
        live = owner[leaf]
        if not isinstance(live, mx.array) or not mx.issubdtype(live.dtype, mx.floating):
            raise ConfigError(f"{path}: {key} is not a float parameter of this model (quantized?)")
        if value.ndim != live.ndim or any(
            a > b for a, b in zip(value.shape, live.shape, strict=True)
        ):
            raise ConfigError(f"{path}: {key} is {value.shape}, the model's {live.shape}")
        if value.shape != live.shape:
            pads = [(0, b - a) for a, b in zip(value.shape, live.shape, strict=True)]
            value = mx.pad(value, pads)
        self._owners[key] = (owner, leaf)
        self._base.setdefault(key, live)
        value = decode_patch(value, live) if delta else value.astype(live.dtype)
        mx.eval(value)
        return value

    def activate(self, name: str | None) -> None:
        """Put patch `name` in place (None: the base's own arrays: bit-identical answers)."""
        if name == self.active:
            return
        if name is not None and name not in self._patches:
            raise ConfigError(f"unknown weights {name!r}; loaded: {', '.join(self.names)}")
        want = self._patches.get(name, {})
        keys = set(self._patches.get(self.active, {})) | set(want)
        for key in keys:
            owner, leaf = self._owners[key]
            setattr(owner, leaf, want.get(key, self._base[key]))
        self.active = name
        remake_fast_paths(self._model, keys)


def remake_fast_paths(model: Any, keys: set[str]) -> None:
    """The engine's compiled vision passes and fused language weights hold the arrays they were
    made from: made again from the arrays now in place (nothing to do where neither exists)."""
    if any(k.startswith("vision_tower.") for k in keys):
        from pnp_vision.inspect.models.qwen2_5_vl import vision

        fast = vision.FastVision.of(getattr(model, "vision_tower", None))
        if fast is not None:
            fast.weights_changed()
    lm = getattr(model, "language_model", None)
    if lm is not None and any(k.startswith("language_model.") for k in keys):
        from pnp_vision.inspect.models.qwen2_5_vl import language

        language.refuse(lm)


__all__ = [
    "ADAPTERS_DIR",
    "DELTA",
    "KIND",
    "PATCH_FILE",
    "WeightSwap",
    "decode_patch",
    "encode_patch",
    "remake_fast_paths",
]
