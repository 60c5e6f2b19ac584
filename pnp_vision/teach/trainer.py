"""The trainer behind `pnp-vision train` and the from-scratch recipe: every weight of a small
Qwen2.5-VL inspector, trained through the engine's own passes.

`Trainer` owns the model (through an Inspector on the folder being trained, so training sees
the exact prompt, tokenizer, answer plan and image prep it is scored on) and the optimizer; a
step takes a `batches.Batch`. The loss is the cross-entropy over the template's answer tokens,
what the Inspector scores, plus two optional auxiliary terms on training-only heads that are
never saved (`geometry_weight`, `locate_weight`: see `devtools/train.py`, whose synthetic
frames carry the geometry). Training runs the engine's batched-window vision pass and
`answer_hidden` (many prompts sharing one text prefix), so the parity test
(tests/evaluation/test_train_parity.py) holds it to the Inspector's answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.teach.batches import pixel_values

LEARNED_BAR = 0.95  # held-out accuracy from which a template counts as learned


@dataclass(frozen=True)
class StepConfig:
    """What the trainer reads: the schedule, the templates and frame sizes of its batches, and
    the auxiliary losses. The from-scratch recipe (`devtools.train.TrainConfig`) extends it."""

    seed: int = 0
    steps: int = 900
    lr: float = 2e-4
    warmup: int = 20
    final_lr_fraction: float = 0.05
    weight_decay: float = 0.01
    # camera sizes of the frames (every view must give one image token count at each)
    sizes: tuple[tuple[int, int], ...] = ((320, 240),)
    templates: tuple[str, ...] = ()
    # per batch: at most N questions of each (template, answer); see `batches.make_batch`
    caps: dict[str, int] = field(default_factory=dict)
    prompt_length: int = 0  # prompts are right-padded to this many tokens (0: the longest)
    compile: bool = True
    geometry_weight: float = 0.0
    locate_weight: float = 0.0
    relate: tuple[str, ...] = ()  # templates whose geometry is their key points' offset


class Trainer:
    """Owns the model (through an Inspector on the folder being trained) and the optimizer."""

    def __init__(self, folder: Path, cfg: StepConfig, templates: Any = None) -> None:
        """`templates`: the TemplateSet the folder answers (default: the shipped prompts/)."""
        import mlx.core as mx
        import mlx.optimizers as optim

        from pnp_vision.inspect import Inspector, TemplateSet
        from pnp_vision.inspect.models.qwen2_5_vl.vision import FastVision
        from pnp_vision.inspect.rope import disable_kernel
        from pnp_vision.teach.batches import build_tables

        self.cfg = cfg
        templates = templates or TemplateSet.load(PROJECT_ROOT / "prompts")
        self.inspector = Inspector(folder, templates, compute_dtype="float32")
        disable_kernel()  # the CUDA rope kernel has no gradient
        self.model = self.inspector.model
        self.adapter = self.inspector.adapter
        vision = FastVision.of(self.model.vision_tower)  # the engine's vision pass
        if vision is None:
            raise ValueError("training needs the Qwen2.5-VL vision tower")
        self.vision = vision
        mx.random.seed(cfg.seed)  # the geometry head's initial weights come from the seed
        self.trainable = _trainable(
            self.model,
            int(self.model.language_model.args.hidden_size),
            cfg.geometry_weight > 0,
            cfg.locate_weight > 0,
        )
        self.tables = build_tables(
            self.inspector, cfg.templates, cfg.prompt_length, cfg.sizes, cfg.caps, cfg.relate
        )
        self.image_token = self.adapter.image_token_id
        schedule = optim.join_schedules(
            [
                optim.linear_schedule(cfg.lr / cfg.warmup, cfg.lr, cfg.warmup),
                optim.cosine_decay(
                    cfg.lr, max(1, cfg.steps - cfg.warmup), cfg.lr * cfg.final_lr_fraction
                ),
            ],
            [cfg.warmup],
        )
        self.optimizer = optim.AdamW(learning_rate=schedule, weight_decay=cfg.weight_decay)
        self._positions: Any = None
        self._layout: tuple[int, int] | None = None
        self._step_fn: Any = None

    # -- the forward pass used for training (batched; the engine runs one image at a time) --
    def _prepare_layout(self, batch: Any) -> None:
        """Image placement, the shared text prefix and mrope positions: the same for every
        prompt of every batch (checked here on the first batch)."""
        import mlx.core as mx
        import numpy as np

        first = batch.ids[0]
        starts = np.argmax(batch.ids == self.image_token, axis=1)
        counts = (batch.ids == self.image_token).sum(axis=1)
        if len(set(starts.tolist())) != 1 or len(set(counts.tolist())) != 1:
            raise ValueError("prompts do not share one image placement; cannot batch them")
        start = int(starts[0])
        if not (batch.ids[:, :start] == first[:start]).all():
            raise ValueError("prompts do not share the text before the image; cannot batch them")
        self._layout = (start, int(counts[0]))
        lm = self.model.language_model
        positions, _ = lm.get_rope_index(mx.array(first[None]), mx.array(batch.grid[:1]))
        self._positions = positions  # (3, 1, length)
        self._grid = np.array(batch.grid)
        self._rows = len(batch.ids)

    def answer_logits(self, pixels: Any, ids: Any, last: Any, frame_of: Any) -> Any:
        """Logits of the answer tokens (`tables.answer_ids`) at each prompt's last position,
        that position's hidden state, and each view's image tokens (views, tokens, width)."""
        import mlx.core as mx

        from pnp_vision.inspect.models.qwen2_5_vl.language import answer_hidden

        start, n_tokens = self._layout
        lm = self.model.language_model
        grid = tuple(tuple(int(v) for v in row) for row in self._grid.tolist())
        # The engine's batched-window vision pass, without its CPU-inference habit of evaluating
        # the window attention early (an eval inside mx.compile / value_and_grad is an error).
        image = self.vision.tower_pass(self.vision.plan(grid), pixels, split_eval=False)
        image = image.reshape(self._grid.shape[0], n_tokens, -1)  # (views, tokens, width)
        feats = image[frame_of]
        embed = lm.model.embed_tokens
        prefix = embed(ids[:1, :start])
        rows = mx.concatenate([feats, embed(ids[:, start + n_tokens :])], axis=1)
        hidden = answer_hidden(lm, prefix, rows, self._positions, last - start)
        answers = embed(mx.array(self.tables.answer_ids))  # tied head: the answers' rows only
        return hidden @ answers.T, hidden, image

    def _build_step(self) -> Any:
        import mlx.core as mx
        import mlx.nn as nn
        import numpy as np

        weight, locate_weight = self.cfg.geometry_weight, self.cfg.locate_weight
        # each image token's centre in token cells (tokens are row-major over the merged grid)
        _, h, w = (int(v) // 2 for v in self._grid[0])
        rows, cols = np.divmod(np.arange(h * w), w)
        centres = mx.array(np.tile(np.column_stack([cols, rows]) + 0.5, 2), dtype=mx.float32)

        def masked_l1(pred: Any, target: Any) -> Any:
            known = ~mx.isnan(target)
            err = nn.losses.smooth_l1_loss(pred, mx.where(known, target, 0.0), reduction="none")
            return mx.where(known, err, 0.0).sum() / mx.maximum(known.sum(), 1)

        def loss_fn(
            trainable: Any, pixels: Any, ids: Any, last: Any, frame_of: Any, target: Any,
            geometry: Any, points: Any,
        ):  # fmt: skip
            logits, hidden, image = self.answer_logits(pixels, ids, last, frame_of)
            loss = nn.losses.cross_entropy(logits, target).mean()
            if weight:
                loss = loss + weight * masked_l1(trainable.geometry(hidden), geometry)
            if locate_weight:  # each token: where the points are, from its own centre
                where = points[:, None, :] - centres[None]
                loss = loss + locate_weight * masked_l1(trainable.locate(image), where)
            return loss, mx.argmax(logits, axis=-1) == target

        grad_fn = nn.value_and_grad(self.trainable, loss_fn)

        def step(
            pixels: Any, ids: Any, last: Any, frame_of: Any, target: Any, geometry: Any,
            points: Any,
        ):  # fmt: skip
            (loss, hits), grads = grad_fn(
                self.trainable, pixels, ids, last, frame_of, target, geometry, points
            )
            self.optimizer.update(self.trainable, grads)
            return loss, hits

        if not self.cfg.compile:
            return step
        state = [self.trainable.state, self.optimizer.state]
        return mx.compile(step, inputs=state, outputs=state)

    def train_step(self, batch: Any) -> tuple[float, Any]:
        if self._step_fn is None:
            self._prepare_layout(batch)
            self._step_fn = self._build_step()
        elif batch.grid.shape != self._grid.shape or len(batch.ids) != self._rows:
            if not self.cfg.compile:  # op by op: any number of views and questions will do
                self._grid, self._rows = batch.grid.copy(), len(batch.ids)
                return self._run_step(batch)
            raise ValueError(
                f"batch shape changed: {batch.grid.shape[0]} views x {len(batch.ids)} questions,"
                f" the first had {self._grid.shape[0]} x {self._rows} (a cap on a template whose"
                " answer varies within a scene moves questions between slots; or --no-compile)"
            )
        return self._run_step(batch)

    def _run_step(self, batch: Any) -> tuple[float, Any]:
        import mlx.core as mx

        loss, hits = self._step_fn(
            mx.array(pixel_values(self.tables, batch)),
            mx.array(batch.ids),
            mx.array(batch.last),
            mx.array(batch.frame_of),
            mx.array(batch.target),
            mx.array(batch.geometry),
            mx.array(batch.points),
        )
        mx.eval(loss, hits, self.trainable.state, self.optimizer.state)
        return loss.item(), hits


def _trainable(model: Any, width: int, geometry: bool, locate: bool = False) -> Any:
    """The model plus the training-only heads (if used), as one module to train."""
    import mlx.nn as nn

    class Trainable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            if geometry:
                self.geometry = nn.Linear(width, 3)
            if locate:
                self.locate = nn.Linear(width, 4)

    return Trainable()


def save_weights(model: Any, folder: Path) -> None:
    """Replace the folder's random weights with the trained ones, in the builder's layout."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = {}
    for name, value in tree_flatten(model.parameters()):
        if name.endswith("patch_embed.proj.weight"):
            value = value.transpose(0, 4, 1, 2, 3)  # PyTorch order, as mlx-community stores it
        weights[name] = value.astype(mx.float32)
    for old in folder.glob("*.safetensors"):
        old.unlink()
    mx.save_safetensors(str(folder / "model.safetensors"), weights, metadata={"format": "mlx"})
    index = {
        "metadata": {"total_size": sum(v.nbytes for v in weights.values())},
        "weight_map": dict.fromkeys(sorted(weights), "model.safetensors"),
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
