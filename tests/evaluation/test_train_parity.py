"""The training forward pass computes exactly what the Inspector scores.

Training runs many prompts and frames in one batched pass (right-padded prompts, image features
spliced in, the LM head on each prompt's last position); the engine runs one frame at a time
with a prompt cache. If the two ever disagreed (positions, image placement, answer tokens, image
prep), the shipped model would be trained on one thing and asked another. A random-weight folder
of the training recipe's shape is enough to compare them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools import train
from pnp_vision.devtools.train_data import render_batch, scene_pattern, training_frame
from pnp_vision.teach.batches import pixel_values
from pnp_vision.teach.trainer import Trainer, save_weights


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    from pnp_vision.devtools.tiny_models import build_model_folder

    root = tmp_path_factory.mktemp("train-parity")
    one_each = {"nozzle_tip": 1, "part_held": 1, "tombstone": 1, "feeder_pocket": 1}
    cfg = train.TrainConfig(compile=False, seed=3, mix=one_each, caps={})
    build_model_folder(
        "qwen2_5_vl", root / "m", train.model_spec(cfg), train._tokenizer_corpus(root / "c")
    )
    return Trainer(root / "m", cfg)


@pytest.fixture(scope="module")
def corner_trainer(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    """polarity_mark alone: a template whose view is mirrored by the corner asked."""
    from pnp_vision.devtools.tiny_models import build_model_folder

    root = tmp_path_factory.mktemp("train-parity-corner")
    cfg = train.TrainConfig(
        compile=False, seed=3, mix={"chip": 6}, caps={}, templates=("polarity_mark",),
        max_pixels=37632,
    )  # fmt: skip
    build_model_folder(
        "qwen2_5_vl", root / "m", train.model_spec(cfg), train._tokenizer_corpus(root / "c")
    )
    return Trainer(root / "m", cfg)


def test_batched_training_pass_matches_the_inspector(trainer: Trainer) -> None:
    _assert_parity(trainer)


def test_mirrored_views_train_as_the_inspector_asks(corner_trainer: Trainer) -> None:
    """Each polarity_mark question sees its own mirrored view, in training as in the engine."""
    batch = _assert_parity(corner_trainer)
    assert len(set(batch.frame_of.tolist())) == len(batch.target)  # YES and NO: two corners


def _assert_parity(trainer: Trainer) -> Any:
    import mlx.core as mx

    from pnp_vision.inspect import Question

    cfg = trainer.cfg
    pattern = scene_pattern(cfg.mix)
    recipe = cfg.recipe()
    at = recipe.easy_batches + 2  # past the curriculum: every family, camera sizes mixed
    batch = render_batch(trainer.tables, at, 11, pattern, recipe)
    trainer._prepare_layout(batch)
    logits, *_ = trainer.answer_logits(
        mx.array(pixel_values(trainer.tables, batch)),
        mx.array(batch.ids),
        mx.array(batch.last),
        mx.array(batch.frame_of),
    )
    logits = np.array(logits)
    n = len(pattern)
    row = 0
    seen: list[float] = []
    sizes = set()
    for index in range(at * n, (at + 1) * n):
        image, label = training_frame(index, 11, pattern, recipe)
        sizes.add(image.shape[:2])
        asked = [q for q in label["questions"] if q["template"] in cfg.templates]
        if not asked:
            continue
        results = trainer.inspector.inspect(
            image, [Question(template=q["template"], params=q["params"]) for q in asked]
        )
        for q, result in zip(asked, results, strict=True):
            plan = trainer.inspector.answer_plan(q["template"])
            assert batch.template[row] == q["template"] and batch.answer[row] == q["answer"]
            answer_ids = trainer.tables.answer_ids
            assert (
                answer_ids[batch.target[row]] == plan.first_tokens[plan.answers.index(q["answer"])]
            )
            mine = logits[row][[answer_ids.index(t) for t in plan.first_tokens]]
            mine = np.exp(mine - mine.max())
            mine /= mine.sum()
            for answer, p in zip(plan.answers, mine, strict=True):
                assert p == pytest.approx(result.probabilities[answer], abs=1e-4)
            seen.append(result.probabilities[plan.answers[0]])
            row += 1
    assert row == len(batch.target) > 0
    assert len(sizes) > 1  # one batch, several camera sizes, one token grid
    assert max(seen) - min(seen) > 0.01  # inputs move the answer: the comparison has teeth
    return batch


def test_geometry_targets_are_the_drawn_offsets(trainer: Trainer) -> None:
    """The auxiliary target of a nozzle_alignment question is the tip's offset from the
    crosshair the generator drew, on the right side of the label gap; other questions have
    none (NaN: left out of the loss)."""
    from pnp_vision.devtools.synthetic_scenes import CENTRED_MAX, OFF_MIN
    from pnp_vision.teach.batches import GEOMETRY_SCALE

    cfg = trainer.cfg
    batches = [
        render_batch(trainer.tables, i, 5, scene_pattern(cfg.mix), cfg.recipe()) for i in (0, 1)
    ]
    nozzle = 0
    for batch in batches:
        for template, answer, geometry in zip(
            batch.template, batch.answer, batch.geometry, strict=True
        ):
            if template != "nozzle_alignment":
                assert np.isnan(geometry).all()
                continue
            nozzle += 1
            dx, dy, dist = geometry * GEOMETRY_SCALE
            assert dist == pytest.approx(np.hypot(dx, dy), rel=1e-5)
            assert dist <= CENTRED_MAX if answer == "YES" else dist >= OFF_MIN
    assert nozzle >= 2


def test_auxiliary_losses_join_the_answer_loss_and_are_not_saved(tmp_path) -> None:
    """The same first step without and with each auxiliary term (geometry, location): each
    adds to the loss, and the saved folder holds the model's weights only, never the
    training-only heads."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from pnp_vision.devtools.tiny_models import build_model_folder

    one_each = {"nozzle_tip": 2, "part_held": 1, "tombstone": 1, "feeder_pocket": 1}
    losses = {}
    for name, geometry, locate in (("none", 0.0, 0.0), ("geometry", 3.0, 0.0), ("locate", 0, 1)):
        cfg = train.TrainConfig(
            compile=False, seed=4, mix=one_each, caps={}, vision_depth=2,
            geometry_weight=geometry, locate_weight=locate,
        )  # fmt: skip
        folder = tmp_path / name
        build_model_folder(
            "qwen2_5_vl",
            folder,
            train.model_spec(cfg),
            train._tokenizer_corpus(tmp_path / f"c-{name}"),
        )
        trainer = Trainer(folder, cfg)
        batch = render_batch(trainer.tables, 0, 5, scene_pattern(cfg.mix), cfg.recipe())
        assert np.isfinite(batch.points).sum() >= 4  # the nozzle views are located
        heads = {n.split(".")[0] for n, _ in tree_flatten(trainer.trainable.parameters())}
        assert heads == {"model"} | ({"geometry"} if geometry else set()) | (
            {"locate"} if locate else set()
        )
        losses[name], _ = trainer.train_step(batch)
        save_weights(trainer.model, folder)
        saved = mx.load(str(folder / "model.safetensors"))
        assert set(saved) == {n for n, _ in tree_flatten(trainer.model.parameters())}
    assert losses["geometry"] > losses["none"] + 0.01
    assert losses["locate"] > losses["none"] + 0.01


@pytest.mark.parametrize("size", [(160, 120), (640, 480), (1280, 720), (1920, 1080), (300, 500)])
def test_location_targets_land_where_the_view_shows_the_point(size) -> None:
    """A frame whose pixels hold their own coordinates, cut into the nozzle view as the
    engine cuts it: the view pixel under each mapped point holds (to within the view's own
    pixel size) the frame coordinates the point was drawn at."""
    from pnp_vision.inspect import TemplateSet
    from pnp_vision.inspect.views import render_view, view_box
    from pnp_vision.teach.batches import TOKEN_CELL, _view_points

    template = TemplateSet.load(PROJECT_ROOT / "prompts").get("nozzle_alignment")
    roi, view_size = tuple(template.roi), tuple(template.view)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.dstack([xs, ys, np.zeros_like(xs)])
    view = render_view(frame, roi, view_size)
    grid = np.array([[1, view_size[1] // 14, view_size[0] // 14]])
    rng = np.random.default_rng(size)
    left, _, right, _ = view_box(size, roi, view_size)
    box_scale = (right - left) / view_size[0]  # frame pixels per view pixel
    for _ in range(20):
        # points inside the view's middle, where a view pixel holds a full average
        point = [
            width * (roi[0] + roi[2] * rng.uniform(0.3, 0.7)),
            height * (roi[1] + roi[3] * rng.uniform(0.3, 0.7)),
        ]
        cells = _view_points(point * 2, frame.shape, (roi, None, view_size), grid)
        col, row = (int(v * TOKEN_CELL) for v in cells[:2])
        assert cells[:2] == cells[2:]
        assert abs(view[row, col, 0] - point[0]) <= box_scale / 2 + 0.6
        assert abs(view[row, col, 1] - point[1]) <= box_scale / 2 + 0.6


def test_a_batch_that_asks_nothing_is_skipped(corner_trainer: Trainer) -> None:
    """World chip frames ask polarity_mark of about one part in four: a batch of such frames
    that asks nothing is an EmptyBatch, and the training stream goes on to the next one
    instead of its helper dying (the trainer then stopped on a timeout)."""
    from dataclasses import replace

    from pnp_vision.devtools.train_data import BatchStream
    from pnp_vision.teach.batches import EmptyBatch

    recipe = replace(corner_trainer.cfg, world_share=1.0, easy_batches=0, clean_steps=0).recipe()
    pattern = scene_pattern({"chip": 1})

    def asks(i: int) -> bool:
        labels = training_frame(i, 0, pattern, recipe)[1]
        return any(q["template"] == "polarity_mark" for q in labels["questions"])

    empty = next(i for i in range(100) if not asks(i))
    with pytest.raises(EmptyBatch, match="none of 1 frames asks polarity_mark"):
        render_batch(corner_trainer.tables, empty, 0, pattern, recipe)
    with BatchStream(corner_trainer.tables, 0, {"chip": 1}, recipe, helpers=1) as stream:
        got = [next(stream) for _ in range(empty + 2)]
    assert all(len(b.target) > 0 for b in got)
