"""Model folder checks and loading: every way a folder can be wrong is one clear line.

mlx-vlm's `load()` falls back to the Hugging Face hub for a path that does not exist and
raises assorted exceptions deep inside transformers for incomplete folders. We check the folder
first, switch the hub off, and translate whatever still goes wrong into `ModelLoadError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pnp_vision.errors import ModelLoadError, ModelNotFound
from pnp_vision.inspect.models import ARCHITECTURES

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tiktoken.model", "vocab.json")


def check_model_folder(path: Path) -> dict[str, Any]:
    """Validate a local model folder; returns its config. Raises ModelLoadError."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFound(f"model folder {path} does not exist")
    if not path.is_dir():
        raise ModelLoadError(f"model path {path} is not a folder")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelNotFound(f"model folder {path} has no config.json (not a model folder)")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config_path}: unreadable config: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_path}: config is not a JSON object")
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ModelLoadError(
            f"model folder {path}: unsupported model_type {model_type!r}"
            f" (supported: {', '.join(ARCHITECTURES)})"
        )
    _check_weights(path)
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"model folder {path} has no tokenizer files (expected one of"
            f" {', '.join(_TOKENIZER_FILES)})"
        )
    if not (path / "preprocessor_config.json").is_file():
        raise ModelLoadError(
            f"model folder {path} has no processor config (preprocessor_config.json)"
        )
    return config


def _check_weights(path: Path) -> None:
    index_path = path / "model.safetensors.index.json"
    if index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text())["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{index_path}: unreadable weight index: {exc}") from exc
        missing = sorted({f for f in weight_map.values() if not (path / f).is_file()})
        if missing:
            raise ModelLoadError(
                f"model folder {path}: weight shard(s) named in the index are missing:"
                f" {', '.join(missing)}"
            )
    elif not any(path.glob("*.safetensors")):
        raise ModelLoadError(f"model folder {path} has no weights (*.safetensors)")


def load_model(path: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(model, processor, config) from a checked local folder, with the hub switched off."""
    config = check_model_folder(path)
    os.environ["HF_HUB_OFFLINE"] = "1"  # before mlx_vlm/transformers/huggingface_hub import
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        from mlx_vlm import load

        model, processor = load(str(Path(path).resolve()))
    except Exception as exc:  # translated at this one boundary
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"model folder {path}: mlx-vlm could not load it: {first}") from exc
    return model, processor, config
