"""Runs the atheris harness for a bounded number of cases, seeded with valid requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris ships wheels for Linux x86_64 only")

HARNESS = Path(__file__).with_name("atheris_request_path.py")
SEEDS = [
    {"id": "a", "kind": "ping"},
    {"id": "b", "kind": "status"},
    {"id": "c", "kind": "templates"},
    {"id": "d", "kind": "inspect", "camera": "top", "template": "tombstone"},
    {
        "id": "e",
        "kind": "inspect",
        "camera": "top",
        "template": "part_marking",
        "params": {"marking": "STM32F103"},
        "frame": "fresh",
        "deadline_ms": 500,
    },
    {
        "id": "f",
        "kind": "inspect",
        "camera": "top",
        "questions": [
            {"template": "polarity_mark", "params": {"corner": "top_left"}},
            {"template": "nozzle_alignment"},
        ],
        "frame": "seq",
        "seq": 4,
    },
]
RUNS = 4000


def test_request_path_survives_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        # first byte 0: the JSON frame alone (see the harness)
        (corpus / f"seed{i}").write_bytes(b"\x00" + json.dumps(seed).encode())
    run = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(corpus),
            f"-runs={RUNS}",
            "-max_total_time=120",
            "-seed=1",
            "-rss_limit_mb=2048",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert f"Done {RUNS} runs" in out or "DONE" in out, out[-2000:]
