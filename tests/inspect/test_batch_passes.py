"""Qwen2.5-VL's batched passes equal the one-image passes on the tiny real-architecture model:
the vision tower over several images (one grid, and a mix), and `rows_logits` (one row per
image, its questions packed) against `packed_logits` per image: eager, and as GPUs run it
(fused projections, compiled, rows and batch padded to their buckets), and with the text
before the image run once for all rows.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from pnp_vision.inspect.loading import load_model
from pnp_vision.inspect.models import patching
from pnp_vision.inspect.models.qwen2_5_vl import language, vision
from pnp_vision.inspect.models.qwen2_5_vl.adapter import batch_bucket, packed_bucket
from pnp_vision.inspect.runtime import setup_runtime

ANSWERS = (11, 12, 13)


@pytest.fixture
def qwen(tiny_model_dir):
    """A fresh model each test (fusing re-points its weights)."""
    model, _, config = load_model(tiny_model_dir("qwen2_5_vl"))
    model.set_dtype(mx.float32)
    mx.eval(model.parameters())
    return model, config


def _pixels(grid: tuple[int, int, int], seed: int) -> mx.array:
    t, h, w = grid
    rng = np.random.default_rng(seed)
    return mx.array(rng.standard_normal((t * h * w, 3 * 2 * 14 * 14), np.float32))


def _rel(a: mx.array, b: mx.array) -> float:
    return float(mx.abs(a - b).max() / mx.abs(b).max())


@pytest.mark.parametrize("compiled", [False, True])
def test_one_tower_pass_over_several_images_equals_each_alone(qwen, compiled):
    model, _ = qwen
    fast = vision.install(model, setup_runtime(), compiled=compiled)
    # 8x8 tiles into windows (the transpose path for a whole batch), 6x8 and 10x14 do not
    for grids in ([(1, 8, 8)] * 3, [(1, 6, 8)] * 4, [(1, 8, 8), (1, 10, 14), (1, 8, 8)]):
        pixels = [_pixels(g, i) for i, g in enumerate(grids)]
        alone = [fast(px, mx.array([g])) for px, g in zip(pixels, grids, strict=True)]
        together = fast(mx.concatenate(pixels), mx.array([list(g) for g in grids]))
        assert _rel(together, mx.concatenate(alone)) < 1e-5, grids
    assert fast.plan(((1, 8, 8),) * 3).tiles is not None


def _rows(model, config, count: int) -> list[language.Row]:
    """`count` images (two grids), each with its own prefix text and 1-3 questions."""
    lm, merge, image = model.language_model, 2, config["image_token_id"]
    width = lm.model.embed_tokens.weight.shape[1]
    rows = []
    for i in range(count):
        grid = (1, 8, 8) if i % 2 else (1, 6, 10)
        n = grid[1] * grid[2] // 4
        prefix = [5, 6, 7, config["vision_start_token_id"], *[image] * n, 8 + i % 3]
        features = mx.array(np.random.default_rng(i).standard_normal((n, width), np.float32))
        text = lm.model.embed_tokens(mx.array([prefix]))
        at = prefix.index(image)
        embeds = mx.concatenate([text[:, :at], features[None], text[:, at + n :]], axis=1)
        positions, next_position = language.mrope_positions(prefix, [grid], image, merge)
        suffixes = [[20 + q, 30 + i, 40][: 1 + (q + i) % 3] for q in range(1 + i % 3)]
        rows.append(language.Row(embeds, positions, next_position, suffixes))
    return rows


def _each_alone(lm, rows: list[language.Row]) -> mx.array:
    return mx.concatenate(
        [
            language.packed_logits(lm, r.embeds, r.positions, r.next_position, r.suffixes, ANSWERS)
            for r in rows
        ]
    )


def test_rows_equal_each_image_packed_alone(qwen):
    model, config = qwen
    lm = model.language_model
    rows = _rows(model, config, 5)
    want = _each_alone(lm, rows)
    got = language.rows_logits(lm, rows, ANSWERS)
    assert got.shape == (sum(len(r.suffixes) for r in rows), len(ANSWERS))
    assert _rel(got, want) < 1e-5
    longer = language.rows_logits(lm, rows, ANSWERS, length=max(r.length for r in rows) + 9)
    assert _rel(longer, want) < 1e-5  # padding is never attended to
    prompts = [[5, 6, 7, config["vision_start_token_id"], config["image_token_id"]]] * 2
    head = language.shared_head(prompts, config["image_token_id"])
    assert head == 4  # the text before the image
    shared = language.rows_logits(lm, rows, ANSWERS, head=head)  # it runs once, on one row
    assert _rel(shared, want) < 1e-5
    assert language.shared_head([[1, 2, 3], [1, 2, 4]], 99) == 2
    with pytest.raises(ValueError, match="do not fit"):
        language.rows_logits(lm, rows, ANSWERS, length=3)


def test_rows_as_gpus_run_them_fused_compiled_and_padded_to_buckets(qwen):
    model, config = qwen
    lm = model.language_model
    rows = _rows(model, config, 9)
    want = _each_alone(lm, rows)
    assert language.fuse(lm)
    length = packed_bucket(max(r.length for r in rows))
    batch = batch_bucket(len(rows))
    assert batch == 10 and length % 16 == 0
    got = language.rows_logits(lm, rows, ANSWERS, compiled=True, length=length, batch=batch)
    assert _rel(got, want) < 1e-5
    again = language.rows_logits(lm, rows[:8], ANSWERS, compiled=True, length=length, batch=batch)
    assert _rel(again, want[: sum(len(r.suffixes) for r in rows[:8])]) < 1e-5  # same trace


def test_buckets_pad_little() -> None:
    for n in range(1, 65):
        assert n <= batch_bucket(n) <= max(n, int(n * 1.25) + 1)
    assert [batch_bucket(n) for n in (1, 7, 8, 9, 15, 16, 17)] == [1, 7, 8, 10, 16, 16, 20]


def test_encode_batch_as_gpus_run_it_pads_the_image_count_to_a_bucket(tiny_model_dir, make_frame):
    """Compiling (GPUs), one compiled tower pass per (grid, bucketed count): 9 images of one
    grid run as 10 (the last repeated), each keeps its own features; another grid separately."""
    import dataclasses

    from pnp_vision.inspect.models.qwen2_5_vl.adapter import QwenVLAdapter

    model, processor, _ = load_model(tiny_model_dir("qwen2_5_vl"))
    model.set_dtype(mx.float32)
    runtime = dataclasses.replace(setup_runtime(), compile=True)
    patching.install(patching.patches_for("qwen2_5_vl").routes(runtime))  # the tower's route
    fast = vision.install(model, runtime)
    adapter = QwenVLAdapter(model, processor, runtime)
    frames = [make_frame(i, 112, 112) for i in range(9)] + [make_frame(20, 84, 112)]
    batch = [adapter.preprocess(f, None) for f in frames]
    alone = [adapter.preprocess(f, None) for f in frames]
    for inputs in alone:
        adapter.encode(inputs)
    adapter.encode_batch(batch)
    for b, a in zip(batch, alone, strict=True):
        assert b.features.shape == a.features.shape
        assert _rel(b.features, a.features) < 1e-5
    counts = sorted(len(grid) for grid in fast._passes)
    assert counts == [1, 1, 10]  # alone (two grids), then the nine as ten
