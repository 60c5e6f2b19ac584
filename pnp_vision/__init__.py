"""pnp-vision: machine vision for pick-and-place rigs.

The public API: `VisionClient` (a controller asking the worker), `Inspector` (the model in
process), their questions and results, and the error tree. Names load on first use, so
`import pnp_vision.<anything>` stays light (no zmq, pydantic or mlx until asked for).
"""

import importlib

__version__ = "0.1.0"

_ERRORS = (
    "BadParams",
    "BadRequest",
    "Busy",
    "ConfigError",
    "DeadlineExceeded",
    "ErrorCode",
    "ImageError",
    "Internal",
    "ModelError",
    "ModelLoadError",
    "NoFrame",
    "PnpVisionError",
    "ShuttingDown",
    "UnknownCamera",
    "UnknownTemplate",
)
_HOME: dict[str, str] = {
    **dict.fromkeys(_ERRORS, "pnp_vision.errors"),
    **dict.fromkeys(("Inspection", "ServiceTimeout", "VisionClient"), "pnp_vision.client"),
    **dict.fromkeys(
        ("InspectionResult", "Inspector", "Question", "TemplateSet"), "pnp_vision.inspect"
    ),
}

__all__ = ["__version__", *sorted(_HOME)]


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'pnp_vision' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
