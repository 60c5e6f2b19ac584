"""The package's public API: every name in `__all__` imports, and nothing else is public."""

from __future__ import annotations

import subprocess
import sys
import types

import pnp_vision


def test_every_public_name_imports_and_nothing_private_leaks() -> None:
    namespace: dict[str, object] = {}
    exec("from pnp_vision import *", namespace)
    public = {name for name in namespace if name != "__builtins__"}
    assert public == set(pnp_vision.__all__)
    for name in pnp_vision.__all__:
        assert not name.startswith("_") or name == "__version__"
        value = getattr(pnp_vision, name)
        if isinstance(value, type):
            assert value.__module__.startswith("pnp_vision."), name
            assert not value.__name__.startswith("_"), name
    assert issubclass(pnp_vision.ModelLoadError, pnp_vision.PnpVisionError)
    assert issubclass(pnp_vision.ServiceTimeout, pnp_vision.PnpVisionError)
    # beyond __all__, the package shows only its submodules (no helper, no import leftovers)
    extra = {
        name
        for name, value in vars(pnp_vision).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert extra <= set(pnp_vision.__all__)


def test_importing_the_package_stays_light() -> None:
    code = "import sys, pnp_vision; print(sorted({'zmq', 'mlx', 'pydantic'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
