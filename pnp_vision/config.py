"""Service settings: `config/*.toml`, then `PNP_VISION_*` environment variables on top.

One flat model so every setting has exactly one name in both places:
`queue_size` in TOML is `PNP_VISION_QUEUE_SIZE` in the environment.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pnp_vision.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "PNP_VISION_"


class StrictModel(BaseModel):
    """Base of every config and wire model: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Settings(StrictModel):
    frames_endpoint: str = Field(
        "tcp://127.0.0.1:5555",
        description="Where the capture daemon publishes frames and camera status (PUB binds).",
    )
    requests_endpoint: str = Field(
        "tcp://127.0.0.1:5556", description="Where the worker serves controllers (ROUTER binds)."
    )
    model_dir: Path = Field(
        PROJECT_ROOT / "models" / "pnp-inspector",
        description="Local mlx-vlm model folder the worker loads (never downloaded).",
    )
    prompts_dir: Path = Field(PROJECT_ROOT / "prompts", description="Inspection templates.")
    cameras_dir: Path = Field(PROJECT_ROOT / "cameras", description="Camera definitions.")
    queue_size: int = Field(8, ge=1, le=1024, description="Requests waiting for the model.")
    request_timeout_s: float = Field(
        10.0, gt=0, description="Client wait for one reply before it retries."
    )
    client_retries: int = Field(3, ge=0, le=20, description="Client resends after a timeout.")
    min_confidence: float = Field(
        0.8, ge=0.0, le=1.0, description="Probability an answer needs to count as confident."
    )
    max_frame_age_s: float = Field(
        1.0, gt=0, description="Oldest 'latest' frame the worker will inspect."
    )
    refuse_untrained: bool = Field(
        False,
        description="Answer unknown_template to a template the model folder records it did not "
        "learn (calibration.json), instead of an answer marked trained: false.",
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
    compute_dtype: str = Field(
        "auto",
        description="auto (fp32 on CPU, checkpoint dtype on GPU), float32, bfloat16, float16.",
    )
    log_level: str = Field("INFO", description="Python logging level name.")
    keys_dir: Path | None = Field(
        None, description="CurveZMQ key folder (pnp-vision keys generate); unset = no CURVE."
    )
    client_key: str = Field("client", description="Name of this client's key pair in keys_dir.")


def _read_toml_dir(config_dir: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(config_dir.glob("*.toml")):
        try:
            merged.update(tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
    return merged


def load_settings(
    config_dir: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Read settings; later sources win: TOML files (sorted), environment, keyword overrides."""
    env = os.environ if env is None else env
    config_dir = Path(env.get(ENV_PREFIX + "CONFIG_DIR", config_dir or PROJECT_ROOT / "config"))
    values = _read_toml_dir(config_dir) if config_dir.is_dir() else {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings (from {config_dir} and {ENV_PREFIX}*): {exc}") from exc
