"""What the console asks of the worker beyond the basics, on the wire: the whole frame with the
box the model saw, questions kept out of the history, per-template counts and the bar in
`status`, and `trained` in `recent` (so history rows can say "untrained")."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from console_helpers import DEMO
from PIL import Image

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import BadParams
from pnp_vision.inspect.imageprep import template_box, to_pil
from pnp_vision.inspect.templates import TemplateSet
from pnp_vision.protocol.requests import CropRequest, CropResult, InspectRequest
from pnp_vision.stack.launch import ServiceStack


def test_whole_crops_keep_false_counts_and_trained(stack: ServiceStack) -> None:
    png = (DEMO / "000000-nozzle_tip.png").read_bytes()
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    with VisionClient(stack.requests_endpoint, timeout=30.0, retries=0) as client:
        before = client.status().templates
        roi = (10, 20, 280, 200)
        asked = client.inspect_many(
            None, ["nozzle_alignment", ("part_marking", {"marking": "R0603"})], image=png, roi=roi
        )
        reply, _ = client.request(
            CropRequest(id="whole-1", request=asked.id, question=0, whole=True)
        )
        whole = CropResult.model_validate(reply.result)
        got = Image.open(io.BytesIO(base64.b64decode(whole.png_base64)))
        frame = to_pil(png)
        assert got.size == frame.size == (whole.width, whole.height)
        assert np.array_equal(np.asarray(got.convert("RGB")), np.asarray(frame))
        nozzle = templates.get("nozzle_alignment")
        assert whole.box == template_box(frame.size, nozzle, roi=roi)
        left, top, right, bottom = whole.box
        assert roi[0] <= left < right <= roi[0] + roi[2]
        assert roi[1] <= top < bottom <= roi[1] + roi[3]

        seen = {s.id: s for s in client.recent(limit=10)}
        answers = seen[asked.id].answers
        assert [a.trained for a in answers] == [r.trained for r in asked.results] == [True, False]

        hidden = InspectRequest(id="label-check-1", image=True, template="tombstone", keep=False)
        client.request(hidden, png)
        assert "label-check-1" not in {s.id for s in client.recent(limit=50)}

        for _ in range(3):
            client.status()  # a console's polls: never counted as answers
        status = client.status()
    assert status.min_confidence == 0.9
    counts = status.templates

    def answered(name: str, table: dict) -> int:
        return table[name].answered if name in table else 0

    assert answered("nozzle_alignment", counts) == answered("nozzle_alignment", before) + 1
    assert answered("tombstone", counts) == answered("tombstone", before) + 1
    assert counts["nozzle_alignment"].p50_ms is not None and counts["nozzle_alignment"].p50_ms > 0


def test_errors_are_counted_per_template(stack: ServiceStack) -> None:
    with VisionClient(stack.requests_endpoint, timeout=30.0, retries=0) as client:
        before = client.status().templates.get("polarity_mark")
        bad = InspectRequest(
            id=f"bad-{time.time()}",
            camera="demo",
            template="polarity_mark",
            params={"corner": "middle"},
        )
        with pytest.raises(BadParams, match="corner"):
            client.request(bad)
        after = client.status().templates["polarity_mark"]
    was = before.errors.get("bad_params", 0) if before else 0
    assert after.errors["bad_params"] == was + 1
