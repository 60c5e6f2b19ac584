"""Service settings: `config/*.toml`, then `PNP_VISION_*` environment variables on top.

One flat model so every setting has exactly one name in both places:
`queue_size` in TOML is `PNP_VISION_QUEUE_SIZE` in the environment. Which `config/` is read,
and which templates, cameras and model the defaults mean, is the lookup (`pnp_vision.lookup`).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator

from pnp_vision import lookup
from pnp_vision.defaults import ROOT, shipped
from pnp_vision.errors import ConfigError
from pnp_vision.logs import kv
from pnp_vision.protocol.base import StrictModel
from pnp_vision.protocol.requests import FoldersRead

# The package's defaults (`pnp_vision.defaults`): the clone's root in a clone, the copies inside
# the package when installed from a wheel. Kept for the code that reads shipped files by path.
PROJECT_ROOT = ROOT
ENV_PREFIX = "PNP_VISION_"
log = logging.getLogger(__name__)
# The confidence bar wherever none is given (worker, Inspector, eval): chosen on the evaluation
# families (docs/evaluation.md), where no learned template is over 0.5% confident and wrong.
DEFAULT_MIN_CONFIDENCE = 0.9

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "ENV_PREFIX",
    "PROJECT_ROOT",
    "Settings",
    "StrictModel",
    "load_settings",
    "log_folders",
]

# PNP_VISION_* variables that are not settings (read where they act); any other one that looks
# like a setting name is a typo, reported instead of silently ignored.
OTHER_VARIABLES = frozenset(
    {
        "CONFIG_DIR",
        "HOME",
        "BLAS",
        "FASTMATH",
        "COMPILE",
        "KEEP_MEMORY",
        "VISION_ATTENTION",
        "KEEP_TEST_RUNS",
    }
)


class ComputeDtype(StrEnum):
    AUTO = "auto"  # float32 on the CPU, the checkpoint's dtype on a GPU
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class Settings(StrictModel):
    frames_endpoint: str = Field(
        "tcp://127.0.0.1:5555",
        description="Where the capture daemon publishes frames and camera status (PUB binds).",
    )
    requests_endpoint: str = Field(
        "tcp://127.0.0.1:5556", description="Where the worker serves controllers (ROUTER binds)."
    )
    model_dir: Path = Field(
        shipped("models", lookup.DEFAULT_MODEL),
        description="Local mlx-vlm model folder the worker loads (never downloaded): a path, or "
        "the name of a folder under the rig folder's models/, else the package's models/.",
    )
    prompts_dir: Path | list[Path] = Field(
        shipped("prompts"),
        description="Template folder, or folders (a later one adds or replaces templates by "
        "name); unset: the package's templates, then the rig folder's prompts/.",
    )
    cameras_dir: Path | list[Path] = Field(
        shipped("cameras"),
        description="Camera definition folder, or folders (a later one adds or replaces cameras "
        "by name); unset: the package's demo camera, then the rig folder's cameras/.",
    )
    queue_size: int = Field(8, ge=1, le=1024, description="Requests waiting for the model.")
    batch_size: int = Field(
        16,
        ge=1,
        le=256,
        description="Most inspect requests the model answers as one batch (the vision pass over "
        "all their views at once, the language pass packed); those ready are taken together. "
        "1: one request at a time. A batch never holds more than the queue does (queue_size).",
    )
    batch_wait_s: float = Field(
        0.002,
        ge=0,
        le=1,
        description="Once a request is ready, how long the model may wait for more to join its "
        "batch: the most a request is delayed by batching, and only while requests come "
        "together (after a batch of one it takes what is ready, with no wait).",
    )
    request_timeout_s: float = Field(
        10.0, gt=0, description="Client wait for one reply before it retries."
    )
    client_retries: int = Field(3, ge=0, le=20, description="Client resends after a timeout.")
    connect_timeout_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Client: how long a worker may take to complete the connection handshake "
        "before the client reports no_worker (not running, or this CURVE key not authorized).",
    )
    min_confidence: float = Field(
        DEFAULT_MIN_CONFIDENCE,
        ge=0.0,
        le=1.0,
        description="Probability an answer needs to count as confident.",
    )
    max_frame_age_s: float = Field(
        1.0, gt=0, description="Oldest 'latest' frame the worker will inspect."
    )
    refuse_untrained: bool = Field(
        False,
        description="Answer unknown_template to a template the model folder records it did not "
        "learn (calibration.json), instead of an answer marked trained: false.",
    )
    refuse_unfamiliar: bool = Field(
        False,
        description="Answer `unfamiliar` (an error) to a question whose view the model folder's "
        "familiarity statistic finds unlike the template's training views, instead of an answer "
        "marked familiar: false (never confident).",
    )
    max_message_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest message any receiving socket accepts."
    )
    default_deadline_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Deadline of a request that sets none: the longest it may wait for a frame "
        "and the model before it is answered deadline_exceeded/no_frame.",
    )
    max_request_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest request (JSON + inline image) the worker inspects; a larger one gets "
        "bad_request. Messages above max_message_bytes are dropped by ZeroMQ itself.",
    )
    bad_request_rate: float = Field(
        20.0,
        ge=0,
        le=1_000_000,
        description="Bad requests per second one connection may send; past that its messages "
        "are held back (read in turn as it earns tokens) so a flood costs the rig little. "
        "0 turns it off.",
    )
    camera_discovery_s: float = Field(
        3.0,
        ge=0,
        le=60,
        description="After the worker starts, how long a camera it has not seen yet is waited for "
        "before requests for it are answered unknown_camera.",
    )
    drain_timeout_s: float = Field(
        120.0,
        gt=0,
        description="On SIGTERM, the longest the worker waits for the inference in "
        "flight before it exits anyway.",
    )
    compute_dtype: ComputeDtype = Field(
        ComputeDtype.AUTO,
        description="auto (fp32 on CPU, checkpoint dtype on GPU), float32, bfloat16, float16.",
    )
    log_level: LogLevel = Field(LogLevel.INFO, description="Logging level (case-insensitive).")
    blas: str | None = Field(
        None,
        description="OpenBLAS library preloaded for MLX's CPU matmuls; unset: opencv's bundled "
        "one, else the system's; empty: no preload.",
    )
    keep_memory: bool = Field(
        True, description="Keep freed memory in the process (glibc mallopt) instead of trimming."
    )
    memory_limit_gb: float | None = Field(
        None,
        gt=0,
        description="Memory this process's MLX may hold, its buffer cache included (GiB); unset:"
        " MLX's default, most of the device. Set it where several workers share one GPU, or"
        " the first one's cache starves the next (out of memory on the device).",
    )
    fastmath: bool | None = Field(
        None, description="Fast exp/SiLU/GELU/attention routes; unset: on the CPU only."
    )
    compile: bool | None = Field(
        None, description="mx.compile whole forward passes; unset: on GPUs only."
    )
    vision_attention: Literal["sdpa", "padded", "matmul"] | None = Field(
        None, description="Qwen2.5-VL vision attention; unset: matmul with fastmath, else sdpa."
    )
    merge_adapters: bool | None = Field(
        None,
        description="GPUs' fused pass: merge each LoRA adapter into its own copy of the weights "
        "it changes (no cost per inference, that much more memory per adapter) instead of "
        "adding its low-rank terms; unset: on GPUs.",
    )
    keys_dir: Path | None = Field(
        None, description="CurveZMQ key folder (pnp-vision keys generate); unset = no CURVE."
    )
    client_key: str = Field("client", description="Name of this client's key pair in keys_dir.")
    history_size: int = Field(
        32,
        ge=0,
        le=256,
        description="Answered inspections the worker keeps (with their frame) for `recent` and "
        "`crop`: what a console shows. 0 keeps none.",
    )
    adapters: dict[str, Path] = Field(
        default_factory=dict,
        description="LoRA adapter folder per template (`[adapters]` table: template = folder); "
        "the worker loads the base once and activates the template's adapter for its questions.",
    )
    camera_adapters: dict[str, Path] = Field(
        default_factory=dict,
        description="LoRA adapter folder per camera (`[camera_adapters]` table: camera = "
        "folder), for questions whose template names none in `adapters`.",
    )
    outcomes_dir: Path | None = Field(
        None,
        description="Recording folder where `outcome` requests write labelled frames (what the "
        "machine observed); unset: outcome requests are refused (bad_request).",
    )
    console_token: str | None = Field(
        None,
        description="Token the console (`pnp-vision console`) requires on every request; needed "
        "to bind beyond loopback. `--token` overrides it.",
    )

    # What the lookup chose (load_settings): shown at start and in the worker's `status`.
    _folders: FoldersRead | None = PrivateAttr(None)
    _model_candidates: list[Path] = PrivateAttr(default_factory=list)

    @property
    def folders(self) -> FoldersRead:
        if self._folders is not None:
            return self._folders
        prompts = self.prompts_dir if isinstance(self.prompts_dir, list) else [self.prompts_dir]
        return FoldersRead(
            home=None, found_by="none", config=None, prompts=[str(p) for p in prompts]
        )

    def require_model(self) -> Path:
        """The model folder, or ModelNotFound naming every place it was looked for."""
        model_dir = Path(self.model_dir)
        if not (model_dir / "config.json").is_file():
            raise lookup.model_not_found(self._model_candidates or [model_dir])
        return model_dir

    @field_validator("adapters", "camera_adapters", mode="before")
    @classmethod
    def _json_table(cls, value: Any) -> Any:
        """From the environment a table is JSON: `{"nozzle_alignment": "/path/adapter"}`."""
        if isinstance(value, str):
            import json

            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected a JSON object of name -> folder: {exc}") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("compute_dtype", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


def _read_toml_dir(config_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged keys of every `*.toml` (sorted; a later file wins), and `file:line` of each.

    A key that is not a setting stops here, naming its file, line and the nearest setting."""
    merged: dict[str, Any] = {}
    where: dict[str, str] = {}
    for path in sorted(config_dir.glob("*.toml")):
        try:
            text = path.read_text()
            data = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
        for key, value in data.items():
            line = _line_of(text, key)
            place = f"{path}:{line}" if line else str(path)
            if key not in Settings.model_fields:
                (nearest,) = difflib.get_close_matches(key, list(Settings.model_fields), 1, 0.0)
                raise ConfigError(f"{place}: {key} is not a setting; did you mean {nearest}?")
            merged[key] = value
            where[key] = f"{place}: {key}"
    return merged, where


def _line_of(text: str, key: str) -> int | None:
    """The line where a top-level key is set (`key =`, `"key" =`, `key.sub =` or `[key]`)."""
    name = re.escape(key)
    pattern = rf"""^[ \t]*(?:(?:{name}|"{name}"|'{name}')[ \t]*[=.]|\[[ \t]*{name}[ \t]*[\].])"""
    found = re.search(pattern, text, re.MULTILINE)
    return None if found is None else text.count("\n", 0, found.start()) + 1


def _check_variables(env: Mapping[str, str]) -> None:
    """A PNP_VISION_* variable close to a setting's name but not one is a typo: say which."""
    names = [name.upper() for name in Settings.model_fields]
    for key in env:
        if not key.startswith(ENV_PREFIX):
            continue
        rest = key.removeprefix(ENV_PREFIX)
        if rest in names or rest in OTHER_VARIABLES:
            continue
        close = difflib.get_close_matches(rest, names, n=1, cutoff=0.75)
        if close:
            raise ConfigError(
                f"unknown environment variable {key}: did you mean {ENV_PREFIX}{close[0]}?"
            )


def load_settings(
    config_dir: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Read settings; later sources win: TOML files (sorted), environment, keyword overrides.

    Which `config/` is read, and what unset template, camera and model settings mean, is the
    lookup (`pnp_vision.lookup`); `config_dir` names the folder (PNP_VISION_CONFIG_DIR wins)."""
    env = os.environ if env is None else env
    cwd = Path.cwd()
    home = lookup.find_home(env, cwd)
    folder, base = lookup.config_folder(env, config_dir, home, cwd)
    values, source = _read_toml_dir(folder) if folder is not None else ({}, {})
    bases = dict.fromkeys(values, base)
    for name in _PATH_SETTINGS & set(values):
        values[name] = lookup.rebase(values[name], base)
    _check_variables(env)
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env:
            field = Settings.model_fields[name]
            # An empty variable unsets an optional setting (`PNP_VISION_KEYS_DIR=`: no CURVE),
            # unless the empty text is itself a value (`PNP_VISION_BLAS=`: preload none).
            empty_unsets = field.default is None and str not in typing.get_args(field.annotation)
            values[name] = None if env[key] == "" and empty_unsets else env[key]
            source[name] = key
            bases[name] = cwd
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    source.update({name: f"option {name}" for name in given})
    bases.update(dict.fromkeys(given, cwd))
    for kind in ("prompts", "cameras"):
        if f"{kind}_dir" not in values:
            layers = lookup.layered(kind, home)
            values[f"{kind}_dir"] = layers if len(layers) > 1 else layers[0]
    asked = values.get("model_dir")
    candidates = lookup.model_candidates(
        None if asked is None else Path(asked), bases.get("model_dir", cwd), home
    )
    values["model_dir"] = lookup.first_folder(candidates)
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:3]:
            name = str(err["loc"][0]) if err["loc"] else ""
            where = source.get(name, name or "settings")
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}={err.get('input')!r:.60}: {msg}")
        raise ConfigError("invalid setting " + "; ".join(problems)) from None
    prompts = settings.prompts_dir
    settings._folders = FoldersRead(
        home=None if home.folder is None else str(home.folder),
        found_by=home.found_by,
        config=None if folder is None else str(folder),
        prompts=[str(p) for p in (prompts if isinstance(prompts, list) else [prompts])],
    )
    settings._model_candidates = candidates
    return settings


# Path settings that a rig folder's own files may give relative to the rig folder (model_dir
# too, by the lookup's candidates).
_PATH_SETTINGS = frozenset({"prompts_dir", "cameras_dir", "keys_dir", "outcomes_dir"})


def log_folders(settings: Settings, *kinds: str) -> None:
    """The one start-up line saying which folders this process reads: the rig folder, the
    settings, and `kinds` of "prompts", "cameras", "model"."""
    folders = settings.folders
    fields: dict[str, object] = {
        "home": folders.home or "-",
        "found_by": folders.found_by,
        "config": folders.config or "-",
    }
    for kind in kinds:
        value = settings.model_dir if kind == "model" else getattr(settings, f"{kind}_dir")
        fields[kind] = ",".join(str(v) for v in value) if isinstance(value, list) else value
    log.info("folders read %s", kv(**fields))
