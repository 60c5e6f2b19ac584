"""`recent` and `crop`: any controller sees what the worker answered and the image it saw."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import BadRequest
from pnp_vision.inspect.imageprep import template_view
from pnp_vision.inspect.templates import TemplateSet
from pnp_vision.stack.launch import ServiceStack


def test_recent_lists_another_clients_inspection_and_serves_its_exact_crops(
    stack: ServiceStack, client: VisionClient, sample_png: bytes
) -> None:
    before = time.time()
    with VisionClient(stack.requests_endpoint, timeout=20.0, retries=0) as other:
        asked = other.inspect_many(
            None,
            [("nozzle_alignment", {}), ("part_marking", {"marking": "R0603"})],
            image=sample_png,
            roi=(10, 20, 200, 150),
        )
    seen = client.recent(limit=5, after=before)
    mine = [s for s in seen if s.id == asked.id]
    assert len(mine) == 1, seen
    assert [a.template for a in mine[0].answers] == ["nozzle_alignment", "part_marking"]
    assert [a.answer for a in mine[0].answers] == [r.answer for r in asked.results]
    assert mine[0].answers[1].params == {"marking": "R0603"}
    assert mine[0].frame is not None and mine[0].frame.source == "image"

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    for index, name in enumerate(["nozzle_alignment", "part_marking"]):
        template = templates.get(name)
        expected = template_view(sample_png, template, roi=(10, 20, 200, 150))
        got = Image.open(io.BytesIO(client.crop(asked.id, index)))
        assert got.size == expected.size
        assert np.array_equal(np.asarray(got.convert("RGB")), np.asarray(expected))


def test_crop_of_an_unknown_request_or_question_is_a_clear_error(
    client: VisionClient, sample_png: bytes
) -> None:
    with pytest.raises(BadRequest, match="no recent inspection 'nope'"):
        client.crop("nope")
    asked = client.inspect(None, "tombstone", image=sample_png)
    with pytest.raises(BadRequest, match="has 1 question"):
        client.crop(asked.id, 3)


def test_ask_save_crop_writes_the_image_the_model_saw(
    stack: ServiceStack, sample_png: bytes, tmp_path
) -> None:
    import subprocess
    import sys

    image, crop = tmp_path / "frame.png", tmp_path / "crop.png"
    image.write_bytes(sample_png)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pnp_vision.cli",
            "ask",
            "rig",
            "nozzle_alignment",
            "--image",
            str(image),
            "--endpoint",
            stack.requests_endpoint,
            "--save-crop",
            str(crop),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr
    template = TemplateSet.load(PROJECT_ROOT / "prompts").get("nozzle_alignment")
    expected = template_view(sample_png, template)
    assert np.array_equal(np.asarray(Image.open(crop).convert("RGB")), np.asarray(expected))


def test_outcomes_are_refused_when_no_outcomes_dir_is_set(client: VisionClient) -> None:
    asked = client.inspect("demo", "nozzle_alignment")
    with pytest.raises(BadRequest, match="outcomes_dir"):
        client.outcome(asked.id, {0: "YES"})
