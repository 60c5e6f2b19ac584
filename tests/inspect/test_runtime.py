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
