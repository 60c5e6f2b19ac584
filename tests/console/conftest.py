"""Console fixtures: a real capture + worker on the bundled model (it knows which templates it
learned, so answers come back confident, not confident and untrained), recordings to label, a
console process and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import BUNDLED_MODEL, DEMO

from pnp_vision.devtools.browser import launch
from pnp_vision.stack.launch import ServiceStack, service_stack


@pytest.fixture(scope="session")
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pnpc-", dir="/tmp"))
    yield path
    if not os.environ.get("PNP_VISION_KEEP_TEST_RUNS"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(run_dir: Path) -> Iterator[ServiceStack]:
    with service_stack(model_dir=BUNDLED_MODEL, run_dir=run_dir / "shared") as running:
        yield running


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`rig`: the demo's first 30 frames, labels for the first 5 only (the rest to label)."""
    root = tmp_path_factory.mktemp("recordings")
    rig = root / "rig"
    rig.mkdir()
    lines = (DEMO / "index.jsonl").read_text().splitlines()[:30]
    for line in lines:
        shutil.copy(DEMO / json.loads(line)["file"], rig)
    (rig / "index.jsonl").write_text("\n".join(lines) + "\n")
    labels = (DEMO / "labels.jsonl").read_text().splitlines()[:5]
    (rig / "labels.jsonl").write_text("\n".join(labels) + "\n")
    return root


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright import sync_api  # a dev dependency (the lock): never skipped

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        yield browser
        browser.close()
