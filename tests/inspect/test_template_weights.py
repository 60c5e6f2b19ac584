"""A template's own weights (a weights adapter in the model folder): swapped in for that template
only, so every other template answers bit-identically to the base, and seen by the engine's fast
paths (a compiled vision pass or fused language weights left stale would answer with the base).

The base is a copy of the shipped inspector without its own adapters; the folder is that base
with a weights adapter for nozzle_alignment whose patch is the base's tensors, perturbed: what the
patch must change is known exactly (a folder with the same tensors merged into its weights).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import ConfigError
from pnp_vision.inspect import Inspector, Question, TemplateSet
from pnp_vision.inspect.adapters import RoutedInspector, open_inspector, own_adapters
from pnp_vision.inspect.runtime import setup_runtime
from pnp_vision.inspect.template_weights import decode_patch
from pnp_vision.teach.train import write_weights_adapter

SHIPPED = PROJECT_ROOT / "models" / "pnp-inspector"
DEMO = PROJECT_ROOT / "recordings" / "demo"
TAUGHT = "nozzle_alignment"
MIXED = [
    Question(template="tombstone"),
    Question(template=TAUGHT),
    Question(template="part_on_nozzle"),
    Question(template="polarity_mark", params={"corner": "top_left"}),
]


def _patch(model) -> dict:
    """The base's tensors of the last vision block, the merger and the language model,
    each moved by a tenth of its own spread (deterministic)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    rng = np.random.default_rng(5)
    out = {}
    for name, value in tree_flatten(model.parameters()):
        if name.startswith(("vision_tower.blocks.3.", "vision_tower.merger.", "language_model.")):
            base = np.array(value)
            noise = rng.standard_normal(base.shape).astype(np.float32)
            out[name] = mx.array(base + 0.1 * (base.std() + 1e-3) * noise)
    return out


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped inspector's base weights alone (its own adapters left out)."""
    folder = tmp_path_factory.mktemp("bare") / "model"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("adapters"))
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, bare: Path) -> tuple[Path, Path]:
    """(a folder with a weights adapter for TAUGHT, the same patch merged into every weight)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten

    from pnp_vision.teach.trainer import save_weights

    root = tmp_path_factory.mktemp("template-weights")
    taught, merged = root / "taught", root / "merged"
    shutil.copytree(bare, taught)
    shutil.copytree(bare, merged)
    inspector = Inspector(merged, TemplateSet.load(PROJECT_ROOT / "prompts"))
    patch, base = _patch(inspector.model), dict(tree_flatten(inspector.model.parameters()))
    write_weights_adapter(taught, [TAUGHT], patch, base, {"test": True})
    stored = mx.load(str(taught / "adapters" / TAUGHT / "weights.safetensors"))
    merge = {k: decode_patch(v, base[k]) for k, v in stored.items()}  # what the patch holds
    inspector.model.update(tree_unflatten(list(merge.items())))
    save_weights(inspector.model, merged)
    return taught, merged


def test_a_patch_holds_float16_deltas_within_their_rounding_of_the_trained_tensors(
    folders, bare
) -> None:
    """Half the bytes of whole float32 tensors, and each weight within float16's rounding of
    its change (2**-11 of the change, relative) of what was trained."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    taught, _ = folders
    model = Inspector(bare, TemplateSet.load(PROJECT_ROOT / "prompts")).model
    base, patch = dict(tree_flatten(model.parameters())), _patch(model)
    path = taught / "adapters" / TAUGHT / "weights.safetensors"
    stored, meta = mx.load(str(path), return_metadata=True)
    assert meta["encoding"] == "delta-f16" and set(stored) == set(patch)
    assert path.stat().st_size < 0.55 * sum(v.size * 4 for v in patch.values())
    for k, v in stored.items():
        assert v.dtype == mx.float16
        change = np.abs(np.array(patch[k]) - np.array(base[k]))
        error = np.abs(np.array(decode_patch(v, base[k])) - np.array(patch[k]))
        assert np.all(error <= change * 2**-11 + np.abs(np.array(patch[k])) * 2**-23 + 1e-7), k


def _frames() -> list[bytes]:
    return [p.read_bytes() for p in sorted(DEMO.glob("*.png"))[:6]]


def _answers(inspector, questions=MIXED) -> list[list[dict[str, float]]]:
    return [[r.probabilities for r in inspector.inspect(f, questions)] for f in _frames()]


def test_the_folder_routes_its_taught_template_to_its_own_weights(folders, bare) -> None:
    """The other templates answer bit for bit as the base asked the same questions together
    (a CPU's matrix kernels may round in another order for another number of questions, so
    the base is asked exactly what the routed folder asks it)."""
    taught, merged = folders
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    assert own_adapters(taught) == {TAUGHT: taught / "adapters" / TAUGHT}
    routed = open_inspector(taught, templates)
    assert isinstance(routed, RoutedInspector)
    assert isinstance(open_inspector(bare, templates), Inspector)  # no adapters: as it was
    others = [q for q in MIXED if q.template != TAUGHT]
    plain = Inspector(bare, templates)
    base, base_taught = _answers(plain, others), _answers(plain, [Question(template=TAUGHT)])
    mine = _answers(routed)
    reference = _answers(Inspector(merged, templates), [Question(template=TAUGHT)])
    for frame in range(len(mine)):
        rest = iter(base[frame])
        for i, q in enumerate(MIXED):
            if q.template == TAUGHT:
                assert mine[frame][i] != base_taught[frame][0]  # the patch answers it ...
                for answer, p in reference[frame][0].items():  # ... as the merged weights do
                    assert mine[frame][i][answer] == pytest.approx(p, abs=1e-5)
            else:
                assert mine[frame][i] == next(rest)  # bit-identical, not approximately
    # alone, and after the taught template's weights were in place: still bit-identical
    alone = _answers(routed, [Question(template="tombstone")])
    assert alone == _answers(plain, [Question(template="tombstone")])


def test_the_fast_paths_see_the_swapped_weights(folders) -> None:
    """With compiled vision passes and fused language weights (what GPUs run), switching
    between the taught template and the others gives each its own weights' answers."""
    taught, _ = folders
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    compiled = dataclasses.replace(setup_runtime(), compile=True)
    fast = open_inspector(taught, templates, runtime=compiled)
    assert "fused" in "; ".join(fast.inspector.fast_paths)
    plain = _answers(open_inspector(taught, templates))
    for _ in range(2):  # back and forth: every switch remakes what holds the weights
        got = _answers(fast)
        for frame_got, frame_plain in zip(got, plain, strict=True):
            for g, p in zip(frame_got, frame_plain, strict=True):
                for answer in p:
                    assert g[answer] == pytest.approx(p[answer], abs=1e-4)


def test_a_patch_that_does_not_fit_the_model_is_a_config_error(folders, tmp_path) -> None:
    import mlx.core as mx

    taught, _ = folders
    bad = tmp_path / "bad"
    shutil.copytree(taught, bad)
    weights = bad / "adapters" / TAUGHT / "weights.safetensors"
    mx.save_safetensors(str(weights), {"vision_tower.blocks.9.norm1.weight": mx.zeros((64,))})
    with pytest.raises(ConfigError, match=r"blocks\.9\.norm1\.weight is not a parameter"):
        open_inspector(bad, TemplateSet.load(PROJECT_ROOT / "prompts"))
    meta = json.loads((bad / "adapters" / TAUGHT / "pnp_adapter.json").read_text())
    meta["base"]["fingerprint"] = "0" * 16
    (bad / "adapters" / TAUGHT / "pnp_adapter.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="was made for base"):
        open_inspector(bad, TemplateSet.load(PROJECT_ROOT / "prompts"))


def test_a_worker_on_the_folder_routes_its_taught_template_without_settings(folders, bare) -> None:
    """`PNP_VISION_MODEL_DIR=<the folder> pnp-vision worker`: the taught template is answered by
    the folder's own adapter (named in the reply and in status), the others by the base,
    bit-identically to the base folder in process."""
    import tempfile

    from pnp_vision.client import VisionClient
    from pnp_vision.stack.launch import service_stack

    taught, _ = folders
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    frame = _frames()[0]
    # the base asked exactly what the routed folder asks it (see the routing test above)
    bare_inspector = Inspector(bare, templates)
    base = iter(bare_inspector.inspect(frame, [q for q in MIXED if q.template != TAUGHT]))
    plain = bare_inspector.inspect(frame, [Question(template=TAUGHT)])[0]
    routed = open_inspector(taught, templates).inspect(frame, MIXED)
    with (
        tempfile.TemporaryDirectory(prefix="pnpw-", dir="/tmp") as run_dir,  # short ipc paths
        service_stack(model_dir=taught, run_dir=Path(run_dir)) as running,
        VisionClient(running.requests_endpoint, timeout=30.0, retries=0) as vision,
    ):
        asked = [(q.template, q.params) for q in MIXED]
        got = vision.inspect_many("demo", asked, image=frame).results
        route = str(taught / "adapters" / TAUGHT)
        assert vision.status().model.adapters == {f"template:{TAUGHT}": route}
    for q, wire, mine in zip(MIXED, got, routed, strict=True):
        if q.template == TAUGHT:
            assert wire.adapter == route and wire.probabilities == mine.probabilities
            assert wire.probabilities != plain.probabilities
        else:
            assert wire.adapter is None and wire.probabilities == next(base).probabilities


def test_the_inspect_command_answers_through_the_folders_own_weights(folders, bare) -> None:
    """`pnp-vision inspect --model <taught folder>` (and `eval`, through the same
    `open_inspector`) answers as the worker does, not as the bare base."""
    import subprocess
    import sys

    taught, _ = folders
    image = sorted(DEMO.glob("*nozzle_tip.png"))[0]
    done = subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", "inspect", "--model", str(taught), "--image",
         str(image), "--template", TAUGHT, "--json"],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    (mine,) = open_inspector(taught, templates).inspect(image.read_bytes(), [MIXED[1]])
    (base,) = Inspector(bare, templates).inspect(image.read_bytes(), [MIXED[1]])
    got = json.loads(done.stdout)["probabilities"]
    assert got == pytest.approx(mine.probabilities, abs=1e-6) and got != base.probabilities
