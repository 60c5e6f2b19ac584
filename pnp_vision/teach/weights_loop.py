"""The fine-tune loop behind `pnp-vision train`: the small inspector's chosen tensors trained on a
rig's labelled frames, scored on the held-out split as it goes, the best scoring weights kept.

Each step is a batch of labelled questions, each on its own frame, every taught template given
an equal share of the slots, every frame changed as its template allows (`augment.augmented`)
and relit (`augment.relit`), so 160 frames show the model thousands of views with their answers.
Every `check_every` steps the held-out questions are scored through the trainer's own forward
pass (the one the parity test holds to the Inspector); the weights of the lowest held-out loss
are kept, and training stops once `patience` checks in a row found nothing better. What it
returns is the patch: the trained tensors, for a weights adapter (`template_weights.py`).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pnp_vision.errors import ConfigError
from pnp_vision.teach.augment import augmented, relit

# Every tensor (the whole small inspector is 4 MB, and the patch only ever answers the taught
# templates). On issue 32's foreign rig (hexrig: 160 frames trained, 300 unseen tested), every
# tensor at lr 2e-4: 95% held out after 150 steps, 100% on the unseen frames; without the token
# embeddings (the tied answer rows) at 5e-4: 95% after 500 steps, 100% unseen; every tensor
# at 5e-4 sat at chance for 300 steps. docs/evaluation.md "Teaching a rig".
TRAINED = r"^(vision_tower|language_model)\."


@dataclass(frozen=True)
class LoopConfig:
    steps: int = 1200  # at most: `patience` may stop it sooner
    batch: int = 16
    lr: float = 2e-4
    seed: int = 0
    trained: str = TRAINED  # regular expression on parameter names
    relight: bool = True
    check_every: int = 50
    patience: int = 6  # checks without a lower held-out loss before stopping


@dataclass
class LoopResult:
    tensors: dict[str, Any]  # parameter name -> trained array (the best checkpoint)
    base: dict[str, Any]  # the same parameters as they were before training
    steps: int  # steps run
    best_step: int
    losses: list[float]
    checks: list[dict[str, float]] = field(default_factory=list)  # step, loss, accuracy


def _select(model: Any, pattern: str) -> list[str]:
    """Freeze the model but for the parameters whose names match `pattern`; their names."""
    from mlx.utils import tree_flatten

    names = [k for k, _ in tree_flatten(model.parameters()) if re.search(pattern, k)]
    if not names:
        raise ConfigError(f"no parameter matches {pattern!r}: nothing to train")
    model.freeze()
    for key in names:
        *path, leaf = key.split(".")
        node = model
        for part in path:
            node = node[int(part)] if isinstance(node, list) else getattr(node, part)
        node.unfreeze(keys=[leaf], recurse=False)
    return names


def _slot(example: Any) -> dict[str, Any]:
    return {"questions": [{"template": example.template, "params": example.params,
                           "answer": example.answer}]}  # fmt: skip


class _Scorer:
    """Held-out loss and accuracy through the trainer's forward, in batches of the training
    batch's shape (the vision plan is the first batch's)."""

    def __init__(self, trainer: Any, examples: Sequence[Any], images: dict[str, Any], batch: int):
        from pnp_vision.teach.batches import make_batch

        self.trainer = trainer
        self.batches = []
        for i in range(0, len(examples), batch):
            chunk = list(examples[i : i + batch])
            padded = chunk + [chunk[-1]] * (batch - len(chunk))
            frames = [(images[str(e.image)], _slot(e)) for e in padded]
            self.batches.append((make_batch(trainer.tables, frames), len(chunk)))

    def __call__(self) -> tuple[float, float]:
        import mlx.core as mx
        import mlx.nn as nn

        from pnp_vision.teach.batches import pixel_values

        losses, hits = [], []
        for b, n in self.batches:
            logits, *_ = self.trainer.answer_logits(
                mx.array(pixel_values(self.trainer.tables, b)), mx.array(b.ids),
                mx.array(b.last), mx.array(b.frame_of),
            )  # fmt: skip
            target = mx.array(b.target)
            loss = nn.losses.cross_entropy(logits, target, reduction="none")
            right = mx.argmax(logits, axis=-1) == target
            mx.eval(loss, right)
            losses += np.array(loss)[:n].tolist()
            hits += np.array(right)[:n].tolist()
        return float(np.mean(losses)), float(np.mean(hits))


def train_weights(
    folder: Path,
    train: Sequence[Any],
    heldout: Sequence[Any],
    images: dict[str, Any],
    templates: Any,
    cfg: LoopConfig,
    *,
    progress: Callable[[str], None] = print,
) -> LoopResult:
    """Train the tensors `cfg.trained` names of the model in `folder` on `train` (labelled
    questions whose frames are in `images`, BGR by path); keep the best held-out checkpoint."""
    from mlx.utils import tree_flatten

    from pnp_vision.teach.batches import make_batch
    from pnp_vision.teach.trainer import StepConfig, Trainer

    started = time.perf_counter()
    taught = tuple(sorted({e.template for e in train}))
    sizes = tuple(sorted({(i.shape[1], i.shape[0]) for i in images.values()}))
    step_cfg = StepConfig(
        seed=cfg.seed, steps=cfg.steps, lr=cfg.lr, warmup=max(1, min(20, cfg.steps // 5)),
        sizes=sizes, templates=taught, caps={}, compile=True,
        geometry_weight=0.0,  # a rig's labels are answers only
    )  # fmt: skip
    try:
        trainer = Trainer(folder, step_cfg, templates)
    except ValueError as exc:  # e.g. a template whose parameters have no fixed choices
        raise ConfigError(f"cannot fine-tune {', '.join(taught)}: {exc}") from exc
    names = _select(trainer.model, cfg.trained)
    base = {k: v for k, v in tree_flatten(trainer.model.parameters()) if k in names}
    rng = random.Random(cfg.seed)
    by_template: dict[str, list[Any]] = {}
    for e in train:
        by_template.setdefault(e.template, []).append(e)
    order = sorted(by_template)

    def view(e: Any) -> Any:
        template = templates.get(e.template)
        bgr = augmented(images[str(e.image)], template, rng)
        return relit(bgr, template, rng) if cfg.relight else bgr

    def snapshot() -> dict[str, Any]:
        return dict(tree_flatten(trainer.model.parameters()))

    losses: list[float] = []
    checks: list[dict[str, float]] = []
    scorer: _Scorer | None = None
    best: tuple[float, int, dict[str, Any]] | None = None
    waited = 0
    step = 0
    for step in range(1, cfg.steps + 1):
        # every template gets an equal share of the slots, however many labels each has
        chosen = [
            rng.choice(by_template[order[(step * cfg.batch + i) % len(order)]])
            for i in range(cfg.batch)
        ]
        batch = make_batch(trainer.tables, [(view(e), _slot(e)) for e in chosen])
        loss, _ = trainer.train_step(batch)
        losses.append(loss)
        if step % cfg.check_every and step != cfg.steps:
            continue
        scorer = scorer or _Scorer(trainer, heldout, images, cfg.batch)
        held_loss, held_accuracy = scorer()
        checks.append({"step": step, "loss": held_loss, "accuracy": held_accuracy})
        progress(
            f"step {step}/{cfg.steps} loss {np.mean(losses[-cfg.check_every :]):.4f}"
            f" held-out loss {held_loss:.4f} accuracy {100 * held_accuracy:.1f}%"
            f" ({time.perf_counter() - started:.0f} s)"
        )
        if best is None or held_loss < best[0]:
            best, waited = (held_loss, step, snapshot()), 0
        else:
            waited += 1
            if waited >= cfg.patience:
                progress(f"stopped early: no lower held-out loss since step {best[1]}")
                break
    assert best is not None
    return LoopResult(
        tensors={k: best[2][k] for k in names}, base=base, steps=step, best_step=best[1],
        losses=losses, checks=checks,
    )  # fmt: skip


__all__ = ["TRAINED", "LoopConfig", "LoopResult", "train_weights"]
