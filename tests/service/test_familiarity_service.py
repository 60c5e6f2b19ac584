"""Familiarity through the worker: answers carry it on the wire, `status` counts unfamiliar
answers per template and camera, and `refuse_unfamiliar` turns them into `unfamiliar` errors.

Real worker processes on a copy of the trained inspector given a familiarity statistic for
nozzle_alignment (fitted on generated nozzle views); a coarse block pattern is a look it never
saw.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.synthetic import render
from pnp_vision.errors import Unfamiliar
from pnp_vision.inspect import TemplateSet
from pnp_vision.stack.launch import service_stack
from pnp_vision.teach.familiarity_fit import fit_familiarity

NOZZLE = "nozzle_alignment"


def _nozzle(seed: int, i: int) -> np.ndarray:
    return render(i, seed, (320, 240), scenes=["nozzle_tip"])[0]


def _blocks() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.repeat(np.repeat(rng.integers(0, 256, (6, 8, 3), np.uint8), 40, 0), 40, 1)


@pytest.fixture(scope="module")
def familiar_model(tmp_path_factory: pytest.TempPathFactory, nozzle_views) -> Path:
    folder = tmp_path_factory.mktemp("famsvc") / "model"
    shutil.copytree(  # without the shipped statistic: only the nozzle check gets one here
        PROJECT_ROOT / "models" / "pnp-inspector",
        folder,
        ignore=shutil.ignore_patterns("familiarity.*"),
    )
    views = nozzle_views(601, 60)
    fit_familiarity(folder, TemplateSet.load(PROJECT_ROOT / "prompts"), views[:40], views[40:])
    return folder


@contextmanager
def _worker(model: Path, refuse: bool) -> Iterator[VisionClient]:
    env = {"PNP_VISION_REFUSE_UNFAMILIAR": "true" if refuse else "false"}
    with (
        tempfile.TemporaryDirectory(prefix="pnpf-", dir="/tmp") as run_dir,  # short ipc paths
        service_stack(model_dir=model, worker_env=env, run_dir=Path(run_dir)) as running,
        VisionClient(running.requests_endpoint, timeout=20.0, retries=0) as vision,
    ):
        yield vision


def test_unfamiliar_answers_are_flagged_and_counted(familiar_model: Path) -> None:
    with _worker(familiar_model, refuse=False) as vision:
        strange = vision.inspect("demo", NOZZLE, image=_blocks()).result
        assert strange.familiar is False and strange.familiarity > 1.0
        assert strange.confident is False
        known = [vision.inspect("demo", NOZZLE, image=_nozzle(602, i)).result
                 for i in range(4)]  # fmt: skip
        assert any(r.familiar for r in known)
        other = vision.inspect("demo", "tombstone", image=_blocks()).result
        assert other.familiar is None  # no statistic for it: the folder says nothing
        counts = vision.status().templates
        assert counts[NOZZLE].unfamiliar.get("demo", 0) == 1 + sum(
            r.familiar is False for r in known
        )
        assert counts["tombstone"].unfamiliar == {}


def test_refuse_unfamiliar_answers_with_its_error_code(familiar_model: Path) -> None:
    with _worker(familiar_model, refuse=True) as vision:
        with pytest.raises(Unfamiliar, match=NOZZLE) as raised:
            vision.inspect("demo", NOZZLE, image=_blocks())
        assert raised.value.code == "unfamiliar"
        assert vision.status().errors.get("unfamiliar") == 1
