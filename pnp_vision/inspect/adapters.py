"""Adapters at inference: adapter folders applied to the resident base model and switched per
question, without reloading the base.

Two kinds, one folder layout and one switch (`AdapterSet`):

* LoRA (`pnp-vision train --lora`, `teach/lora.py`, for real models): mlx-vlm's
  `adapters.safetensors` + `adapter_config.json`. Unloading puts the base's own Linear objects
  back (mlx-vlm's `replace_lora_with_linear` would merge W + BA into the weights, which cannot
  give the base's answers back bit for bit).
* weights (`pnp-vision train` on the small inspector): whole tensors swapped in for the
  templates they were taught (`template_weights.py`). A model folder written by `train` holds
  them under `adapters/`, and a worker on that folder routes its taught templates to them
  without settings (`template_weights.own_adapters`).

Each folder's `pnp_adapter.json` names the base it was made for (path + fingerprint), the
templates it learned, the training settings and figures; `load_adapter` and `AdapterSet` refuse
another base's adapter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pnp_vision.errors import ConfigError

META_FILE = "pnp_adapter.json"
WEIGHTS_FILE = "adapters.safetensors"
FORMAT = 1


# -- base fingerprint ----------------------------------------------------------------------


def base_fingerprint(model_dir: Path) -> str:
    """What identifies a base model folder: its config.json bytes and its weight files' names
    and sizes (hashing gigabytes of weights on every load would cost seconds)."""
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    if not config.is_file():
        raise ConfigError(f"{model_dir}: no config.json, not a model folder")
    digest = hashlib.sha256(config.read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")):
        digest.update(f"\n{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def read_adapter_meta(folder: Path) -> dict[str, Any]:
    """The adapter folder's `pnp_adapter.json`; ConfigError if it is not an adapter folder."""
    path = Path(folder) / META_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{folder} is not a pnp-vision adapter folder (no {META_FILE})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable adapter metadata: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "base" not in meta:
        raise ConfigError(f"{path}: not a format-{FORMAT} pnp-vision adapter description")
    return meta


# -- loading, unloading, switching ----------------------------------------------------------


def lora_modules(model: Any) -> dict[str, Any]:
    from mlx_vlm.trainer import DoRALinear, LoRALinear

    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, LoRALinear | DoRALinear)
    }


def _set_modules(model: Any, modules: Sequence[tuple[str, Any]]) -> None:
    from mlx.utils import tree_unflatten

    if modules:
        model.update_modules(tree_unflatten(list(modules)))


def fast_paths(model: Any, adapters_on: bool, folded: Any = None) -> Any:
    """Keep the GPU fast paths honest about the adapters: Qwen's fused pass (fused q/k/v and
    gate/up weights, compiled) would bypass LoRA layers, so the active adapter's terms are
    folded into it (`attach_lora`; `folded`: what an earlier call returned for the same
    adapter), and dropped with the adapter. Returns the folded adapter (None: not folded)."""
    lm = getattr(model, "language_model", None)
    if lm is None:
        return None
    from pnp_vision.inspect.models.qwen2_5_vl import language

    if adapters_on:
        return language.attach_lora(lm, folded)
    language.detach_lora(lm)
    return None


def _forget_adapter_config(model: Any) -> None:
    """mlx-vlm records the adapter settings on the model; a bare base has none."""
    model.__dict__.pop("_vlm_adapter_config", None)
    config = getattr(model, "config", None)
    if isinstance(config, dict):
        config.pop("lora", None)
    elif config is not None and hasattr(config, "lora"):
        delattr(config, "lora")


def unload_adapter(model: Any) -> bool:
    """Put the base model's own Linear objects back where LoRA layers wrap them: answers are
    bit-identical to the base's. True if there was anything to unload."""
    layers = lora_modules(model)
    _set_modules(model, [(name, module.linear) for name, module in layers.items()])
    _forget_adapter_config(model)
    fast_paths(model, adapters_on=False)
    return bool(layers)


def check_base(folder: Path, base_dir: Path) -> dict[str, Any]:
    """The adapter's metadata, if it was made for `base_dir`; else a one-line ConfigError."""
    meta = read_adapter_meta(folder)
    made_for = meta["base"]
    actual = base_fingerprint(base_dir)
    if made_for.get("fingerprint") != actual:
        raise ConfigError(
            f"adapter {folder} was made for base {made_for.get('path')}"
            f" (fingerprint {made_for.get('fingerprint')}), not for {base_dir}"
            f" (fingerprint {actual})"
        )
    return meta


def load_adapter(model: Any, folder: Path, base_dir: Path) -> dict[str, Any]:
    """Apply an adapter folder to a loaded base model (any adapter already on it is unloaded
    first); returns the adapter's metadata. ConfigError for another base's adapter."""
    import mlx.core as mx
    from mlx_vlm.trainer import load_adapters

    meta = check_base(Path(folder), Path(base_dir))
    unload_adapter(model)
    try:
        load_adapters(model, str(folder))
    except (OSError, ValueError, KeyError) as exc:
        unload_adapter(model)
        raise ConfigError(f"adapter {folder}: mlx-vlm could not apply it: {exc}") from exc
    for module in lora_modules(model).values():  # compute in the base's dtype (bf16 on GPUs)
        dtype = module.linear.weight.dtype
        if mx.issubdtype(dtype, mx.floating):
            module.lora_a = module.lora_a.astype(dtype)
            module.lora_b = module.lora_b.astype(dtype)
    mx.eval(model.parameters())
    model.eval()
    fast_paths(model, adapters_on=True)
    return meta


class AdapterSet:
    """Several adapters for one resident base, read once; one active at a time, or none.

    Activating swaps LoRA weights and scales in place (and the base's own Linear back where
    the active adapter has no layer), or a weights adapter's tensors (and the base's own arrays
    back): no base reload, no file access. Per-template routing is `for_template`; the worker
    decides which adapter a request gets (`RoutedInspector` does the same in process).
    """

    def __init__(self, model: Any, base_dir: Path, folders: Mapping[str, Path]) -> None:
        from pnp_vision.inspect.template_weights import KIND, PATCH_FILE, WeightSwap

        self._model = model
        self._base: dict[str, Any] = {}  # layer name -> the base's own Linear
        self._wrappers: dict[str, Any] = {}  # layer name -> one LoRALinear reused by all
        self._weights: dict[str, dict[str, tuple[Any, Any, float]]] = {}
        self._folded: dict[str, Any] = {}  # name -> its folded form for the fused pass
        self._swap = WeightSwap(model)  # the weights adapters
        self.meta: dict[str, dict[str, Any]] = {}
        self.active: str | None = None
        unload_adapter(model)
        try:
            for name, folder in folders.items():
                meta = check_base(Path(folder), Path(base_dir))
                if meta.get("kind") == KIND:
                    self._swap.add(name, Path(folder) / PATCH_FILE)
                    self.meta[name] = meta
                    continue
                self.meta[name] = load_adapter(model, Path(folder), Path(base_dir))
                layers = lora_modules(model)
                if any(type(m).__name__ != "LoRALinear" for m in layers.values()):
                    raise ConfigError(f"adapter {folder}: only LoRA adapters can be switched")
                for key, module in layers.items():
                    self._base.setdefault(key, module.linear)
                    self._wrappers.setdefault(key, module)
                self._weights[name] = {
                    key: (m.lora_a, m.lora_b, m.scale) for key, m in layers.items()
                }
                unload_adapter(model)
        except BaseException:
            unload_adapter(model)
            raise

    @property
    def names(self) -> list[str]:
        return list(self.meta)

    def for_template(self, template: str) -> str | None:
        """The first adapter that learned `template`, if any."""
        for name, meta in self.meta.items():
            if template in meta.get("templates", ()):
                return name
        return None

    def activate(self, name: str | None) -> None:
        """Make `name` the active adapter; None restores the bare base (bit-identical)."""
        if name is not None and name not in self.meta:
            raise ConfigError(f"unknown adapter {name!r}; loaded: {', '.join(self.names)}")
        if name == self.active:
            return
        weights = self._weights.get(name, {}) if name is not None else {}
        if self._swap.names:  # the base's own Linear layers in place while weights swap
            _set_modules(self._model, list(self._base.items()))
            fast_paths(self._model, adapters_on=False)
            self._swap.activate(name if name in self._swap.names else None)
        swaps = []
        for key, base in self._base.items():
            if key in weights:
                wrapper = self._wrappers[key]
                wrapper.lora_a, wrapper.lora_b, wrapper.scale = weights[key]
                swaps.append((key, wrapper))
            else:
                swaps.append((key, base))
        _set_modules(self._model, swaps)
        if not weights:
            fast_paths(self._model, adapters_on=False)
        else:
            folded = fast_paths(self._model, True, self._folded.get(name))
            if folded is not None:
                self._folded[name] = folded
        self.active = name


def own_adapters(model_dir: Path) -> dict[str, Path]:
    """A model folder's own weights adapters by template (`adapters/*/` of kind `weights`,
    written by `pnp-vision train`): the routes a worker on the folder takes without settings.
    Other folders there are left alone (a LoRA adapter is routed by the settings only).
    ConfigError if two claim one template."""
    from pnp_vision.inspect.template_weights import ADAPTERS_DIR, KIND

    root = Path(model_dir) / ADAPTERS_DIR
    routes: dict[str, Path] = {}
    for meta_file in sorted(root.glob(f"*/{META_FILE}")):
        folder = meta_file.parent
        meta = read_adapter_meta(folder)
        if meta.get("kind") != KIND:
            continue
        for template in meta.get("templates", []):
            if template in routes:
                raise ConfigError(
                    f"{model_dir}: template {template!r} has two adapters,"
                    f" {routes[template].name} and {folder.name}"
                )
            routes[template] = folder
    return routes


class RoutedInspector:
    """An Inspector whose questions are answered each with its template's adapter, as the
    worker routes them: a model folder's own adapters used in process (`eval`, `inspect`,
    training's held-out scores and familiarity fit). Anything else is the Inspector's."""

    def __init__(self, inspector: Any, routes: Mapping[str, Path]) -> None:
        self.inspector = inspector
        self.routes = {template: str(folder) for template, folder in routes.items()}
        folders = {str(f): Path(f) for f in routes.values()}
        self.adapters = AdapterSet(inspector.model, inspector.model_dir, folders)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inspector, name)

    def inspect(self, image: Any, questions: Sequence[Any], *, roi: Any = None) -> list[Any]:
        """`Inspector.inspect`, one adapter activation per group of questions sharing one."""
        groups: dict[str | None, list[int]] = {}
        for i, q in enumerate(questions if isinstance(questions, list | tuple) else ()):
            name = q.get("template") if isinstance(q, dict) else getattr(q, "template", None)
            route = self.routes.get(name) if isinstance(name, str) else None
            groups.setdefault(route, []).append(i)
        if len(groups) < 2:  # one adapter (or a malformed list: the Inspector says what is wrong)
            self.adapters.activate(next(iter(groups), None))
            return self.inspector.inspect(image, questions, roi=roi)
        out: list[Any] = [None] * len(questions)
        for route, indices in groups.items():
            self.adapters.activate(route)
            answered = self.inspector.inspect(image, [questions[i] for i in indices], roi=roi)
            for i, result in zip(indices, answered, strict=True):
                out[i] = result
        return out

    def answer_features(self, image: Any, questions: Sequence[Any]) -> list[Any]:
        """`Inspector.answer_features` with the questions' adapter active (one template's)."""
        routes = {self.routes.get(q.template) for q in questions}
        if len(routes) != 1:
            raise ValueError("answer_features takes questions that share one adapter route")
        self.adapters.activate(routes.pop())
        return self.inspector.answer_features(image, questions)


def open_inspector(model_dir: Path, templates: Any, **kwargs: Any) -> Any:
    """An Inspector on `model_dir` (keyword arguments: the Inspector's) that answers with the
    folder's own adapters where it has them (a `RoutedInspector`), else the plain Inspector."""
    from pnp_vision.inspect import Inspector

    inspector = Inspector(model_dir, templates, **kwargs)
    own = own_adapters(model_dir)
    return RoutedInspector(inspector, own) if own else inspector


__all__ = [
    "FORMAT",
    "META_FILE",
    "WEIGHTS_FILE",
    "AdapterSet",
    "RoutedInspector",
    "base_fingerprint",
    "check_base",
    "fast_paths",
    "load_adapter",
    "lora_modules",
    "open_inspector",
    "own_adapters",
    "read_adapter_meta",
    "unload_adapter",
]
