"""The batch-rendering helper processes never outlive a trainer that was killed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

_TRAINER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from pnp_vision.inspect.runtime import setup_runtime
    setup_runtime()
    from pnp_vision.devtools import train
    from pnp_vision.devtools.tiny_models import build_model_folder
    from pnp_vision.devtools.train_data import BatchStream
    from pnp_vision.teach.trainer import Trainer

    root = Path(sys.argv[1])
    cfg = train.TrainConfig(mix={"tombstone": 4}, caps={}, compile=False)
    build_model_folder("qwen2_5_vl", root / "m", train.model_spec(cfg),
                       train._tokenizer_corpus(root / "c"))
    tables = Trainer(root / "m", cfg).tables
    stream = BatchStream(tables, 0, cfg.mix, cfg.recipe(), helpers=2, prefetch=1)
    stream.__enter__()
    if sys.argv[2] == "running":
        next(stream)  # the helpers are up; their next batches (> a pipe buffer) wait unread
    # else: killed while the helpers are still starting (they must not take init for their
    # trainer)
    print(" ".join(str(p.pid) for p in stream._procs), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no __exit__: the helpers are on their own
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("when", ["running", "starting"])
def test_helpers_exit_after_the_trainer_is_killed(tmp_path: Path, when: str) -> None:
    # Files, not pipes: the helpers inherit the trainer's stdout/stderr, and a pipe would keep
    # this wait open for as long as they live, which is the very thing under test.
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.run(
            [sys.executable, "-c", _TRAINER, str(tmp_path), when],
            stdout=stdout,
            stderr=stderr,
            timeout=300,
        )
    assert proc.returncode == -9, err.read_text()[-2000:]
    pids = [int(p) for p in out.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling interval under the deadline
    left = [p for p in pids if _alive(p)]
    for pid in left:
        os.kill(pid, 9)
    assert not left, f"helpers {left} outlived their trainer"
