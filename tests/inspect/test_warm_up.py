"""Compiled passes (GPUs) trace once per input shape: `warm_up(batch_size)` traces every batch
size a worker can meet at start-up, so none stalls a worker under load (on an H100 a 7B worker
that met new batch sizes under 16 controllers answered nothing for 9 s). Run with compiled
passes forced on the CPU, in a process of its own (the runtime is set up once per process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = """
import sys
import numpy as np
from pnp_vision.inspect.runtime import setup_runtime
assert setup_runtime().compile
from pnp_vision.inspect import Inspector, Question, TemplateSet
from pnp_vision.inspect.engine import BatchCall
from pnp_vision.inspect.models.qwen2_5_vl import language

traces = []
real = language.decoder_pass
def counted(*args, **kwargs):  # runs only while mx.compile traces a new shape
    traces.append(1)
    return real(*args, **kwargs)
language.decoder_pass = counted

inspector = Inspector(sys.argv[1], TemplateSet.load(sys.argv[2]))
inspector.warm_up(int(sys.argv[3]))
warmed = len(traces)
frame = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype(np.uint8)
for count in (2, 3, 4):
    calls = [BatchCall(frame, [Question(template="nozzle_alignment")])] * count
    assert all(isinstance(r, list) for r in inspector.inspect_batch(calls))
print(warmed, len(traces) - warmed)
"""


def _traces(model: str, prompts: str, batch_size: int) -> tuple[int, int]:
    env = {**os.environ, "PNP_VISION_COMPILE": "1", "PNP_VISION_LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, model, prompts, str(batch_size)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    warmed, later = out.stdout.split()
    return int(warmed), int(later)


@pytest.mark.slow
def test_warm_up_traces_every_batch_size_a_worker_takes(tiny_model_dir, prompts_dir) -> None:
    model = str(tiny_model_dir("qwen2_5_vl"))
    warmed, later = _traces(model, str(prompts_dir), 4)
    assert warmed > 0 and later == 0  # batches of 2-4 after warming: no new trace
    _, unwarmed = _traces(model, str(prompts_dir), 1)
    assert unwarmed > 0  # without it, the same batches trace: the count has teeth
