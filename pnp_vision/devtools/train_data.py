"""Synthetic training batches, rendered in helper processes.

A batch is a handful of synthetic frames plus every question (of the learned templates) that
their labels answer, encoded exactly as the engine encodes its inputs (`teach/batches.py`:
`Tables`, `make_batch`).

Rendering and image prep cost ~5 ms a frame, as much as the frame's share of a training step, so
spawned helper processes make the batches (pixels still as bytes, a quarter of the floats to
send) while MLX trains: helper k makes batches k, k + n, ..., and the
trainer takes them in order, so the stream is the same for any number of helpers.

Frames come from `synthetic.render` (`training_frame`: a camera size, a family `Variation` and
sometimes JPEG, drawn per frame by the `Recipe`) with a per-batch scene pattern: every batch
holds the same
scenes in the same slots, so its shapes never change (one compiled step; caps only on templates
whose answer the scene fixes keep the kept questions, and so the views, in the same slots), and
the generator's per-slot YES/NO alternation keeps every template balanced.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pnp_vision.devtools.synthetic_marking import MIN_MARKING_SIDE
from pnp_vision.devtools.synthetic_scenes import DEFAULT, Variation
from pnp_vision.teach.batches import Batch, EmptyBatch, Tables, make_batch

_GET_TIMEOUT_S = 300.0
# The shortest frame side a scene can be drawn at: a part's marking must be legible in the
# middle half of the top camera's frame (synthetic_marking), which 160x120 cannot give.
MIN_SIDE = {"chip": MIN_MARKING_SIDE}


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


@dataclass(frozen=True)
class Recipe:
    """The frames training draws: camera sizes (with weights), the family `Variation` every
    frame uses, and the share of frames that go through JPEG (quality drawn per frame).
    Since a template's view is the same image at any camera size, frames of every size mix
    in one batch; big frames cost more to render, so they come less often."""

    sizes: tuple[tuple[int, int], ...] = ((320, 240),)
    size_weights: tuple[float, ...] = (1.0,)
    variation: Variation = DEFAULT
    jpeg_share: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 95)
    # A curriculum: the first `easy_batches` batches draw from `easy` (narrower ranges) instead
    # of `variation`, so a tiny model finds the concept on plain cases before the wide ones.
    easy: Variation | None = None
    easy_batches: int = 0
    # Domain randomisation: after the easy batches, a `world_share` of frames is drawn from
    # `world` (the generator's WORLD preset: real parts, tips, tapes, cameras) at `world_sizes`.
    world: Variation | None = None
    world_share: float = 0.0
    world_sizes: tuple[tuple[int, int], ...] = ((320, 240),)
    world_size_weights: tuple[float, ...] = (1.0,)


def _pick_size(
    pick: np.random.Generator,
    sizes: Sequence[tuple[int, int]],
    weights: Sequence[float],
    least: int = 0,
) -> tuple[int, int]:
    """A camera size by weight, among those whose shorter side is at least `least`."""
    keep = [i for i, (w, h) in enumerate(sizes) if min(w, h) >= least] or list(range(len(sizes)))
    p = np.asarray([weights[i] for i in keep], dtype=np.float64)
    return sizes[keep[int(pick.choice(len(keep), p=p / p.sum()))]]


def training_frame(
    index: int,
    seed: int,
    pattern: Sequence[str],
    recipe: Recipe,
    clean: bool = False,
    easy: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Frame `index` of `seed`'s training stream (a function of its arguments only).

    `clean`: even lighting, no blur, noise or JPEG; `easy`: the recipe's easy ranges (see
    `render_batch`)."""
    from pnp_vision.devtools.synthetic import render

    pick = np.random.default_rng([seed, index, 0x512E])
    least = MIN_SIDE.get(pattern[index % len(pattern)], 0)
    size = _pick_size(pick, recipe.sizes, recipe.size_weights, least)
    variation = recipe.easy if easy and recipe.easy is not None else recipe.variation
    if recipe.world is not None and not (clean or easy):
        world = np.random.default_rng([seed, index, 0x3011D])  # the classic stream unchanged
        if world.random() < recipe.world_share:
            size = _pick_size(world, recipe.world_sizes, recipe.world_size_weights, least)
            try:
                return render(index, seed, size, scenes=pattern, variation=recipe.world)
            except RuntimeError:  # no legible marking fits this blur (rare): the classic frame
                pass
    if clean:
        return render(
            index, seed, size, scenes=pattern, variation=variation, lighting="even",
            blur=False, noise=0.0,
        )  # fmt: skip
    if recipe.jpeg_share and pick.random() < recipe.jpeg_share:
        variation = replace(variation, jpeg_quality=recipe.jpeg_quality)
    return render(index, seed, size, scenes=pattern, variation=variation)


def render_batch(
    tables: Tables,
    index: int,
    seed: int,
    pattern: list[str],
    recipe: Recipe,
    clean_batches: int = 0,
) -> Batch:
    """Batch `index` of the stream: frames index * len(pattern) ... of `seed`.

    The first `clean_batches` batches have even lighting, no blur and no noise: clean shapes
    first get the model off the 50/50 plateau sooner, then every nuisance is switched on; the
    first `recipe.easy_batches` draw from the recipe's easy ranges.
    """
    n = len(pattern)
    clean, easy = index < clean_batches, index < recipe.easy_batches
    frames = [
        training_frame(i, seed, pattern, recipe, clean, easy)
        for i in range(index * n, (index + 1) * n)
    ]
    return make_batch(tables, frames)


def _helper(
    tables: Tables,
    seed: int,
    pattern: list[str],
    recipe: Recipe,
    clean_batches: int,
    k: int,
    n: int,
    out: Any,
    parent: int,
) -> None:
    """Render batches k, k + n, ... into `out` until the trainer (pid `parent`, passed in: a
    helper that starts after its trainer died would read init's pid from getppid) is gone."""
    index = k
    while True:
        try:
            batch = render_batch(tables, index, seed, pattern, recipe, clean_batches)
        except EmptyBatch:  # nothing to learn from these frames: the stream takes the next
            index += n
            continue
        while True:
            try:
                out.put(batch, timeout=1.0)
                break
            except queue.Full:
                if os.getppid() != parent:  # the trainer died without stopping us
                    out.cancel_join_thread()  # else exit waits on a pipe nobody reads
                    return
        index += n


class BatchStream:
    """Batches 0, 1, 2, ... made by `helpers` spawned processes; a context manager."""

    def __init__(
        self,
        tables: Tables,
        seed: int,
        mix: dict[str, int],
        recipe: Recipe,
        helpers: int = 2,
        prefetch: int = 3,
        clean_batches: int = 0,
    ) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that holds MLX threads
        self._queues = [ctx.Queue(maxsize=prefetch) for _ in range(helpers)]
        pattern = scene_pattern(mix)
        self._procs = [
            ctx.Process(
                target=_helper,
                args=(tables, seed, pattern, recipe, clean_batches, k, helpers, q, os.getpid()),
                daemon=True,
                name=f"train-batches-{k}",
            )
            for k, q in enumerate(self._queues)
        ]
        self._next = 0

    def __enter__(self) -> BatchStream:
        for proc in self._procs:
            proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            proc.join(10)
        for q in self._queues:
            q.close()
            q.cancel_join_thread()

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        k = self._next % len(self._queues)
        try:
            batch = self._queues[k].get(timeout=_GET_TIMEOUT_S)
        except queue.Empty:
            alive = [p.is_alive() for p in self._procs]
            raise RuntimeError(
                f"no training batch within {_GET_TIMEOUT_S:g} s (helpers alive: {alive})"
            ) from None
        self._next += 1
        return batch
