"""Training batches made exactly as the engine makes its inputs.

A batch is a handful of synthetic frames plus every question (of the learned templates) that
their labels answer. Each frame goes through the engine's own image prep (`imageprep.prepare`,
then the model adapter's processor call, same pixel budget); each question through the
Inspector's own prompt (system, image, rendered question, assistant header) and tokenizer; its
target is the first token of the labelled answer in the Inspector's own answer plan. So the
model is trained on the very token ids and pixels it is scored on at inference.

Frames come from `synthetic.render` with a per-batch scene pattern (`SceneMix`): every batch
holds the same scenes in the same slots, so its shapes never change (one compiled step), and
the generator's per-slot YES/NO alternation keeps each template balanced.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pnp_vision.inspect import Inspector, Question, imageprep

# Scene -> how many of a batch's frames show it. The relational tasks (nozzle on crosshair,
# which corner holds the dot) get more frames than the presence tasks.
DEFAULT_MIX: dict[str, int] = {
    "nozzle_tip": 5,
    "part_held": 3,
    "chip": 4,
    "tombstone": 2,
    "feeder_pocket": 2,
}


@dataclass(frozen=True)
class Batch:
    pixels: np.ndarray  # (frames * patches, patch_dim) float32, processor output
    grid: np.ndarray  # (frames, 3) int, image_grid_thw
    ids: np.ndarray  # (questions, length) int32, right-padded prompts
    last: np.ndarray  # (questions,) int32, index of each prompt's last token
    frame_of: np.ndarray  # (questions,) int32, which frame each question is about
    target: np.ndarray  # (questions,) int32, token id of the labelled answer
    template: list[str]  # (questions,) template name
    answer: list[str]  # (questions,) labelled answer


class Encoder:
    """Frames and questions to model inputs through the Inspector's own pieces."""

    def __init__(self, inspector: Inspector, templates: Sequence[str]) -> None:
        from pnp_vision.inspect.arch import adapter_for

        self.inspector = inspector
        self.templates = tuple(templates)
        self.tokenizer = inspector.processor.tokenizer
        self.adapter = adapter_for(
            inspector.model, inspector.processor, {"model_type": "qwen2_5_vl"}
        )
        views = {(t.roi, t.max_pixels) for t in map(inspector.templates.get, self.templates)}
        if len(views) != 1:
            raise ValueError(f"learned templates need one image view (roi, max_pixels): {views}")
        self.roi, self.max_pixels = views.pop()
        self._ids: dict[str, list[int]] = {}
        self.targets: dict[tuple[str, str], int] = {}
        for name in self.templates:
            plan = inspector.answer_plan(name)
            if not plan.one_pass:
                raise ValueError(f"template {name!r}: answers share a first token; not trainable")
            for answer, token in zip(plan.answers, plan.first_tokens, strict=True):
                self.targets[(name, answer)] = int(token)

    def image(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(pixel_values, grid_thw, image tokens) exactly as the engine prepares `bgr`."""
        view = imageprep.prepare(bgr, template_roi=self.roi, max_pixels=self.max_pixels)
        inputs = self.adapter.preprocess(view, self.max_pixels)
        arrays = inputs.arrays
        return (
            np.array(arrays["pixel_values"], dtype=np.float32),
            np.array(arrays["image_grid_thw"]),
            inputs.n_image_tokens,
        )

    def prompt_ids(self, question: Question, n_image_tokens: int) -> list[int]:
        """Token ids of the whole prompt, image placeholders expanded, as the engine runs it."""
        key = f"{question.template}\0{sorted(question.params.items())}\0{n_image_tokens}"
        ids = self._ids.get(key)
        if ids is None:
            text = self.inspector.prompt(question)
            ids = list(self.tokenizer.encode(text, add_special_tokens=False))
            image = self.adapter.image_token_id
            at = ids.index(image)
            ids = ids[:at] + [image] * n_image_tokens + ids[at + 1 :]
            self._ids[key] = ids
        return ids


def scene_pattern(mix: dict[str, int]) -> list[str]:
    """The scene of each frame slot of a batch (interleaved, so slots are spread out)."""
    pattern: list[str] = []
    left = dict(mix)
    while any(left.values()):
        for name in mix:
            if left[name]:
                pattern.append(name)
                left[name] -= 1
    return pattern


def make_batch(
    encoder: Encoder,
    frames: list[tuple[np.ndarray, dict[str, Any]]],
    length: int,
) -> Batch:
    """One batch from rendered (image, labels) pairs; prompts right-padded to `length`."""
    pixels, grids = [], []
    ids, last, frame_of, target, template, answer = [], [], [], [], [], []
    for f, (bgr, label) in enumerate(frames):
        pv, grid, n_tokens = encoder.image(bgr)
        pixels.append(pv)
        grids.append(grid)
        for q in label["questions"]:
            if q["template"] not in encoder.templates:
                continue
            seq = encoder.prompt_ids(Question(template=q["template"], params=q["params"]), n_tokens)
            if len(seq) > length:
                raise ValueError(f"prompt of {len(seq)} tokens exceeds the batch length {length}")
            ids.append(seq + [0] * (length - len(seq)))
            last.append(len(seq) - 1)
            frame_of.append(f)
            target.append(encoder.targets[(q["template"], q["answer"])])
            template.append(q["template"])
            answer.append(q["answer"])
    return Batch(
        pixels=np.concatenate(pixels),
        grid=np.concatenate(grids),
        ids=np.array(ids, dtype=np.int32),
        last=np.array(last, dtype=np.int32),
        frame_of=np.array(frame_of, dtype=np.int32),
        target=np.array(target, dtype=np.int32),
        template=template,
        answer=answer,
    )


def batches(
    encoder: Encoder,
    seed: int,
    mix: dict[str, int],
    length: int,
    *,
    size: tuple[int, int],
    start_batch: int = 0,
    lighting: str = "varied",
) -> Iterator[Batch]:
    """An endless, deterministic stream of batches: frame i of `seed` in slot i % len(pattern)."""
    from pnp_vision.devtools.synthetic import render

    pattern = scene_pattern(mix)
    n = len(pattern)
    b = start_batch
    while True:
        frames = [
            render(i, seed, size, lighting=lighting, scenes=pattern)  # type: ignore[arg-type]
            for i in range(b * n, (b + 1) * n)
        ]
        yield make_batch(encoder, frames, length)
        b += 1
