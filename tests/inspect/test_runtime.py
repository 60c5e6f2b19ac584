"""The one runtime setup: switches come from Settings (their old PNP_VISION_* names still work)
and are decided per device, once."""

from __future__ import annotations

import pytest

from pnp_vision.config import load_settings
from pnp_vision.errors import ConfigError
from pnp_vision.inspect.runtime import BackendInfo, decide, device_kind, setup_runtime

NO_BLAS = BackendInfo(None, "test")


def test_the_switch_env_names_are_settings(tmp_path):
    env = {
        "PNP_VISION_CONFIG_DIR": str(tmp_path),  # no TOML: the environment alone
        "PNP_VISION_FASTMATH": "0",
        "PNP_VISION_COMPILE": "1",
        "PNP_VISION_BLAS": "",
        "PNP_VISION_KEEP_MEMORY": "0",
        "PNP_VISION_VISION_ATTENTION": "padded",
    }
    s = load_settings(env=env)
    assert (s.fastmath, s.compile, s.blas, s.keep_memory) == (False, True, "", False)
    assert s.vision_attention == "padded"
    unset = load_settings(env={"PNP_VISION_CONFIG_DIR": str(tmp_path)})
    assert (unset.fastmath, unset.compile, unset.blas) == (None, None, None)
    assert unset.keep_memory
    with pytest.raises(ConfigError, match=r"PNP_VISION_VISION_ATTENTION=.flash.: Input should"):
        load_settings(env={**env, "PNP_VISION_VISION_ATTENTION": "flash"})


def test_defaults_per_device_and_settings_win(tmp_path):
    unset = load_settings(env={"PNP_VISION_CONFIG_DIR": str(tmp_path)})
    cpu, gpu = decide(unset, "cpu", NO_BLAS), decide(unset, "gpu", NO_BLAS)
    assert (cpu.fastmath, cpu.compile) == (True, False)
    assert (gpu.fastmath, gpu.compile) == (False, True)
    forced = decide(unset.model_copy(update={"fastmath": False, "compile": True}), "cpu", NO_BLAS)
    assert (forced.fastmath, forced.compile) == (False, True)


def test_setup_runs_once_per_process():
    first = setup_runtime()
    assert setup_runtime() is first
    assert first.device == device_kind()


def test_memory_limit_bounds_mlx_in_its_own_process(tmp_path):
    """`memory_limit_gb` (workers sharing one GPU): MLX's memory and cache limits are set at
    setup, in the process that reads the setting (a fresh one: setup runs once)."""
    import os
    import subprocess
    import sys

    probe = (
        "from pnp_vision.inspect.runtime import setup_runtime; setup_runtime(); "
        "import mlx.core as mx; print(mx.set_memory_limit(1 << 30), mx.set_cache_limit(0))"
    )
    env = {**os.environ, "PNP_VISION_CONFIG_DIR": str(tmp_path)}
    limited = {**env, "PNP_VISION_MEMORY_LIMIT_GB": "1.5"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=limited, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == [str(3 << 29)] * 2, out.stderr
    default = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert default.stdout.split()[0] != str(3 << 29), default.stderr
    with pytest.raises(ConfigError, match="MEMORY_LIMIT_GB"):
        load_settings(env={**env, "PNP_VISION_MEMORY_LIMIT_GB": "0"})
