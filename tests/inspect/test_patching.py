"""patching.py is the one place that rebinds mlx-vlm names: routes go in, are logged, come out."""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from pnp_vision.inspect.models import patching
from pnp_vision.inspect.models.qwen2_5_vl.vision import FastVision
from pnp_vision.inspect.runtime import setup_runtime

QWEN_TARGETS = [
    "mlx_vlm.models.qwen2_5_vl.vision.VisionModel.__call__",
    "mlx_vlm.models.mlp.swiglu",
    "mlx_vlm.models.qwen2_5_vl.language.scaled_dot_product_attention",
]


def test_install_rebinds_the_declared_names_and_uninstall_restores_them(caplog):
    routes = patching.patches_for("qwen2_5_vl").routes(replace(setup_runtime(), fastmath=True))
    assert [r.target for r in routes] == QWEN_TARGETS
    before = patching.uninstall()  # from mlx-vlm as shipped; put back at the end
    try:
        originals = {r.target: getattr(r.owner, r.name) for r in routes}
        with caplog.at_level(logging.INFO, logger=patching.__name__):
            assert patching.install(routes) == QWEN_TARGETS
        patched_lines = [m for m in caplog.messages if m.startswith("mlx-vlm patched: ")]
        assert [m.split()[2] for m in patched_lines] == QWEN_TARGETS  # one line per name
        for r in routes:
            assert getattr(r.owner, r.name) is not originals[r.target]
            assert patching.original(r.owner, r.name) is originals[r.target]
        assert patching.installed() == sorted(QWEN_TARGETS)
        assert patching.install(routes) == []  # once per process
        assert {r.target for r in patching.uninstall()} == set(QWEN_TARGETS)
        for r in routes:
            assert getattr(r.owner, r.name) is originals[r.target]
        assert patching.installed() == []
    finally:
        patching.uninstall()
        patching.install(before)


def test_routes_follow_the_runtime_not_a_switch_per_call():
    qwen, mllama = patching.patches_for("qwen2_5_vl"), patching.patches_for("mllama")
    off = replace(setup_runtime(), fastmath=False)
    assert [r.target for r in qwen.routes(off)] == QWEN_TARGETS[:1]  # the vision tower only
    assert mllama.routes(off) == []
    on = replace(setup_runtime(), fastmath=True)
    assert len(mllama.routes(on)) == 4


def test_the_engine_prepares_only_qwen_vision(inspectors):
    qwen, mllama = inspectors["qwen2_5_vl"], inspectors["mllama"]
    assert FastVision.of(qwen.model.vision_tower) is not None
    assert any("fast vision on" in note for note in qwen.fast_paths)
    assert mllama.fast_paths == []  # the batched-window tower is Qwen2.5-VL's


def test_qwen_patches_do_not_import_mllama():
    """An mllama reshuffle upstream must not break loading Qwen: only the loaded arch imports."""
    code = (
        "import sys\n"
        "from pnp_vision.inspect.runtime import setup_runtime\n"
        "from pnp_vision.inspect.models import patching\n"
        "patching.install(patching.patches_for('qwen2_5_vl').routes(setup_runtime()))\n"
        "print(sorted(m for m in sys.modules if 'mllama' in m))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_nothing_below_settings_reads_the_environment():
    root = Path(patching.__file__).resolve().parents[1]  # pnp_vision/inspect
    for path in root.rglob("*.py"):
        text = path.read_text()
        for read in ("environ.get(", "getenv(", "in os.environ", "environ["):
            if read == "environ[" and path.name == "loading.py":
                continue  # it sets HF_HUB_OFFLINE for mlx-vlm; it reads nothing
            assert read not in text, f"{path.name} reads the environment ({read})"


def test_state_kept_beside_a_module_goes_with_it():
    """Fast-path state (fused weights, window plans) lives beside mlx-vlm's modules, not on
    them, and never outlives one: a new module at a reused address starts clean."""
    import gc

    import mlx.nn as nn

    from pnp_vision.inspect.models.base import PerModule

    state: PerModule[str] = PerModule()
    module = nn.Linear(2, 2)
    state.set(module, "fused")
    assert state.get(module) == "fused" and state.get(nn.Linear(2, 2)) is None
    del module
    gc.collect()
    assert state._items == {}
