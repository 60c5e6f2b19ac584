"""The only code that rebinds mlx-vlm names.

Each architecture's `patches.py` declares what it replaces as `Route`s (a module function or a
class's `__call__`, and the function that takes its place) and what it changes in one loaded
model (`prepare`: fused or padded weights, the fast vision tower). `patch_model` imports only the
architecture being loaded, installs its routes once per process, logs one line per rebound
name, and prepares the model. `uninstall` (and `unpatched`, for A/B comparisons) puts mlx-vlm's
own functions back.

The routes are chosen from the `Runtime` when installed; nothing consults a switch per call.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pnp_vision.inspect.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """`owner.name` (an mlx-vlm module or class) becomes `make(original)` while installed."""

    owner: ModuleType | type
    name: str
    make: Callable[[Callable[..., Any]], Callable[..., Any]]

    @property
    def target(self) -> str:
        """The dotted name rebound, e.g. `mlx_vlm.models.mlp.swiglu`."""
        owner = self.owner
        if isinstance(owner, ModuleType):
            return f"{owner.__name__}.{self.name}"
        return f"{owner.__module__}.{owner.__qualname__}.{self.name}"


_INSTALLED: dict[str, tuple[Route, Callable[..., Any]]] = {}  # target -> (route, original)


def install(routes: Iterable[Route]) -> list[str]:
    """Rebind every route not installed yet; returns the targets rebound now."""
    done = []
    for route in routes:
        if route.target in _INSTALLED:
            continue
        original = getattr(route.owner, route.name)
        replacement = route.make(original)
        setattr(route.owner, route.name, replacement)
        _INSTALLED[route.target] = (route, original)
        name = replacement.__qualname__.replace("<locals>.", "")
        log.info("mlx-vlm patched: %s -> %s.%s", route.target, replacement.__module__, name)
        done.append(route.target)
    return done


def uninstall(targets: Iterable[str] | None = None) -> list[Route]:
    """Put mlx-vlm's originals back (all, or the given targets); returns the routes removed."""
    removed = []
    for target in list(_INSTALLED if targets is None else targets):
        if target not in _INSTALLED:
            continue
        route, original = _INSTALLED.pop(target)
        setattr(route.owner, route.name, original)
        log.info("mlx-vlm restored: %s", target)
        removed.append(route)
    return removed


def installed() -> list[str]:
    """The targets rebound now."""
    return sorted(_INSTALLED)


def original(owner: ModuleType | type, name: str) -> Callable[..., Any]:
    """mlx-vlm's own `owner.name`, whether or not a route replaces it."""
    route = Route(owner, name, lambda f: f)
    entry = _INSTALLED.get(route.target)
    return entry[1] if entry else getattr(owner, name)


@contextlib.contextmanager
def unpatched() -> Iterator[None]:
    """mlx-vlm as shipped inside the block (every route removed), the routes back after it."""
    removed = uninstall()
    try:
        yield
    finally:
        install(removed)


# -- replacements more than one architecture routes to ------------------------------------


def fast_swiglu(plain: Callable[..., Any]) -> Callable[..., Any]:
    """mlx-vlm's `swiglu(gate, x)` by `fastmath.silu_mul` (the CPU's slow exp avoided)."""
    from pnp_vision.inspect import fastmath

    def swiglu(gate: Any, x: Any) -> Any:
        return fastmath.silu_mul(gate, x)

    return swiglu


def fast_sdpa(plain: Callable[..., Any]) -> Callable[..., Any]:
    """A language module's `scaled_dot_product_attention` by `fastmath.attention`, except where
    that does not apply (attention sinks, mlx-vlm's quantized caches): there the original."""
    from pnp_vision.inspect import fastmath

    def scaled_dot_product_attention(
        queries: Any,
        keys: Any,
        values: Any,
        cache: Any,
        scale: float,
        mask: Any,
        sinks: Any = None,
    ) -> Any:
        if sinks is None and not hasattr(cache, "dequantize"):  # TurboQuant caches have it
            return fastmath.attention(queries, keys, values, scale, mask)
        return plain(queries, keys, values, cache, scale=scale, mask=mask, sinks=sinks)

    return scaled_dot_product_attention


def patches_for(model_type: str) -> ModuleType:
    """The `patches` module of one architecture (importing nothing of the others)."""
    return importlib.import_module(f"pnp_vision.inspect.models.{model_type}.patches")


def patch_model(model: Any, model_type: str, runtime: Runtime) -> list[str]:
    """Install `model_type`'s routes for this runtime and prepare `model`; returns notes for
    the load log."""
    patches = patches_for(model_type)
    install(patches.routes(runtime))
    return patches.prepare(model, runtime)


__all__ = [
    "Route",
    "fast_sdpa",
    "fast_swiglu",
    "install",
    "installed",
    "original",
    "patch_model",
    "patches_for",
    "uninstall",
    "unpatched",
]
