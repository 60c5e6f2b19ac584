"""The training forward pass computes exactly what the Inspector scores.

Training runs many prompts and frames in one batched pass (right-padded prompts, image features
spliced in, the LM head on each prompt's last position); the engine runs one frame at a time
with a prompt cache. If the two ever disagreed (positions, image placement, answer tokens, image
prep), the shipped model would be trained on one thing and asked another. A random-weight folder
of the training recipe's shape is enough to compare them.
"""

from __future__ import annotations

import numpy as np
import pytest

from pnp_vision.devtools import train
from pnp_vision.devtools.train_data import (
    pixel_values,
    render_batch,
    scene_pattern,
    training_frame,
)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> train.Trainer:
    from pnp_vision.devtools.tiny_models import build_model_folder

    root = tmp_path_factory.mktemp("train-parity")
    one_each = {"nozzle_tip": 1, "part_held": 1, "tombstone": 1, "feeder_pocket": 1}
    cfg = train.TrainConfig(compile=False, seed=3, mix=one_each, caps={})
    build_model_folder(
        "qwen2_5_vl", root / "m", train.model_spec(cfg), train._tokenizer_corpus(root / "c")
    )
    return train.Trainer(root / "m", cfg)


def test_batched_training_pass_matches_the_inspector(trainer: train.Trainer) -> None:
    import mlx.core as mx

    from pnp_vision.inspect import Question

    cfg = trainer.cfg
    pattern = scene_pattern(cfg.mix)
    recipe = cfg.recipe()
    at = recipe.easy_batches + 2  # past the curriculum: every family, camera sizes mixed
    batch = render_batch(trainer.tables, at, 11, pattern, recipe)
    trainer._prepare_layout(batch)
    logits, _ = trainer.answer_logits(
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


def test_geometry_targets_are_the_drawn_offsets(trainer: train.Trainer) -> None:
    """The auxiliary target of a nozzle_alignment question is the tip's offset from the
    crosshair the generator drew, on the right side of the label gap; other questions have
    none (NaN: left out of the loss)."""
    from pnp_vision.devtools.synthetic_scenes import CENTRED_MAX, OFF_MIN
    from pnp_vision.devtools.train_data import GEOMETRY_SCALE

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


def test_geometry_loss_joins_the_answer_loss_and_is_not_saved(tmp_path) -> None:
    """The same first step with and without the geometry term: the term adds to the loss, and
    the saved folder holds the model's weights only, never the training-only head."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from pnp_vision.devtools.tiny_models import build_model_folder

    one_each = {"nozzle_tip": 2, "part_held": 1, "tombstone": 1, "feeder_pocket": 1}
    losses = {}
    for weight in (0.0, 3.0):
        cfg = train.TrainConfig(
            compile=False, seed=4, mix=one_each, caps={}, vision_depth=2, geometry_weight=weight
        )
        folder = tmp_path / f"m{weight}"
        build_model_folder(
            "qwen2_5_vl",
            folder,
            train.model_spec(cfg),
            train._tokenizer_corpus(tmp_path / f"c{weight}"),
        )
        trainer = train.Trainer(folder, cfg)
        batch = render_batch(trainer.tables, 0, 5, scene_pattern(cfg.mix), cfg.recipe())
        heads = [n for n, _ in tree_flatten(trainer.trainable.parameters()) if "geometry" in n]
        assert bool(heads) == (weight > 0)
        losses[weight], _ = trainer.train_step(batch)
    assert losses[3.0] > losses[0.0] + 0.01
    train.save_weights(trainer.model, folder)
    saved = mx.load(str(folder / "model.safetensors"))
    assert set(saved) == {name for name, _ in tree_flatten(trainer.model.parameters())}
    assert not any("geometry" in name for name in saved)
