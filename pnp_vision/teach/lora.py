"""LoRA fine-tuning of a real vision-language model (Qwen2.5-VL, Llama 3.2 Vision) on labelled
frames, with mlx-vlm's own trainer and LoRA layers, and adapters the worker can switch.

Training sees exactly what inference sends: each example is cropped and sized by the template
(`imageprep.prepare`), preprocessed by the Inspector's architecture adapter, and prompted with
`Inspector.prompt`; the supervised tokens are the template's answer tokens as the scorer reads
them (`AnswerPlan.sequences`), everything before them is masked out of the loss.

mlx-vlm pieces used: `get_peft_model` (LoRALinear on the language model's linear layers),
`Trainer` with the VLM SFT task from `make_task`, `forward_vlm_logits` + `cross_entropy` for the
loss, `save_trainable_weights` (via the trainer) and `load_adapters`. Two hooks of that task are
replaced, each working around an mlx-vlm 0.7.10 issue:

* loss: `vlm_sft_loss` passes the 2-D padding mask on as the model's attention mask, which
  mllama's text model uses as its self-attention mask, so attention is no longer causal (the
  answer probability differs from inference: 0.765 vs 0.803 on the tiny model). With right
  padding a causal mask is already right, so `_answer_loss` passes none.
* batches: `collate_vlm_batch` stacks equal-shaped media arrays, turning Qwen's flattened
  (patches, features) pixel values into (1, patches, features), which its vision tower cannot
  take. `_iterate_batches` collates the text fields with mlx-vlm and the media here.

Batches of several images train Qwen2.5-VL (right padding; each row's logits equal its own);
mlx-vlm's mllama forward cannot take several images' tiles in one batch, so mllama trains with
batch_size 1.

The adapter folder it writes (mlx-vlm's `adapters.safetensors` + `adapter_config.json` and our
`pnp_adapter.json`) is loaded, unloaded and switched at inference by `inspect/adapters.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pnp_vision.errors import ConfigError, ImageError
from pnp_vision.inspect.adapters import (
    FORMAT,
    META_FILE,
    WEIGHTS_FILE,
    base_fingerprint,
    fast_paths,
    lora_modules,
    unload_adapter,
)

if TYPE_CHECKING:
    import mlx.core as mx
    import numpy as np
    from PIL import Image

    from pnp_vision.inspect import Inspector, TemplateSet
    from pnp_vision.inspect.models.base import Adapter


@dataclass(frozen=True)
class Example:
    """One labelled question about one frame: the image (file, PIL image or BGR array), the
    template and its parameters, and the true answer."""

    image: Path | str | Image.Image | np.ndarray
    template: str
    params: dict[str, str]
    answer: str


@dataclass
class LoraReport:
    """What `train_lora` did: loss per step and held-out accuracy before and after."""

    adapter_dir: Path
    base_fingerprint: str
    templates: tuple[str, ...]
    losses: list[float]
    train_examples: int
    heldout_examples: int
    accuracy_before: float | None  # None without a held-out split
    accuracy_after: float | None
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.1f}%"

        first, last = (self.losses[0], self.losses[-1]) if self.losses else (0.0, 0.0)
        return (
            f"lora {', '.join(self.templates)}: {len(self.losses)} steps on"
            f" {self.train_examples} examples, loss {first:.3f} -> {last:.3f}; held-out"
            f" ({self.heldout_examples}) accuracy {pct(self.accuracy_before)} ->"
            f" {pct(self.accuracy_after)}; {self.seconds:.1f} s; adapter {self.adapter_dir}"
        )


# -- examples ------------------------------------------------------------------------------


def examples_from_recording(
    recording: Path, *, templates: Iterable[str] | None = None
) -> list[Example]:
    """Every labelled question of a recording (its labels.jsonl), optionally of some templates."""
    from pnp_vision.evaluation.labels import load_labels

    recording = Path(recording)
    wanted = None if templates is None else set(templates)
    return [
        Example(recording / frame.file, q.template, dict(q.params), q.answer)
        for frame in load_labels(recording)
        for q in frame.questions
        if wanted is None or q.template in wanted
    ]


def _image(image: Path | str | Image.Image | np.ndarray) -> Any:
    """A frame file is read as the evaluator reads it (OpenCV, BGR); other inputs pass."""
    if isinstance(image, Path | str):
        import cv2

        array = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if array is None or not array.size:
            raise ImageError(f"{image}: missing or unreadable frame")
        return array
    return image


# -- training rows and batches --------------------------------------------------------------


@dataclass
class _Row:
    """One training sequence: prompt + answer token ids, the answer mask, and the image view
    (preprocessed again when batched, so 200 frames do not pin 200 pixel tensors)."""

    ids: list[int]
    answer_from: int  # first answer token
    view: Any
    max_pixels: int | None
    adapter: Adapter

    def text(self) -> dict[str, np.ndarray]:
        import numpy as np

        n = len(self.ids)
        completion = np.zeros((1, n), np.int32)
        completion[0, self.answer_from :] = 1
        return {
            "input_ids": np.asarray([self.ids], np.int32),
            "attention_mask": np.ones((1, n), np.int32),
            "completion_mask": completion,
        }

    def media(self, length: int) -> dict[str, mx.array]:
        """The processor arrays as the Inspector makes them; mllama also gets the dense
        cross-attention mask its adapter builds (text from the image token on sees the tiles)."""
        import mlx.core as mx

        arrays = dict(self.adapter.preprocess(self.view, self.max_pixels).arrays)
        if "aspect_ratio_mask" in arrays:
            image_at = self.ids.index(self.adapter.image_token_id)
            tiles = arrays["aspect_ratio_mask"].reshape(1, 1, 1, -1).astype(mx.float32)
            rows = (mx.arange(length) >= image_at).reshape(1, -1, 1, 1).astype(mx.float32)
            arrays["cross_attention_mask"] = rows * tiles
        return arrays


def _collate_media(media: list[dict[str, mx.array]]) -> dict[str, mx.array]:
    """Concatenate each media field along its first axis (Qwen's patch rows and grids, mllama's
    per-image tiles); mllama's cross-attention masks are already padded to the batch length."""
    import mlx.core as mx

    return {key: mx.concatenate([m[key] for m in media], axis=0) for key in media[0]}


def _iterate_batches(
    dataset: Sequence[_Row],
    batch_size: int,
    max_seq_length: int,
    *,
    train: bool = False,
    pad_to_multiple: int = 1,
    pad_token_id: int = 0,
    seed: int | None = None,
    **_: Any,
) -> Iterator[dict[str, Any]]:
    """mlx-vlm's batch order (`iterate_batch_indices`) and text collation
    (`collate_vlm_batch`), with the media collated by `_collate_media` (see the module note)."""
    from mlx_vlm.trainer.common.utils import iterate_batch_indices
    from mlx_vlm.trainer.vlm.sft.runtime import collate_vlm_batch

    order = iterate_batch_indices(
        len(dataset),
        batch_size,
        length_key=lambda i: len(dataset[i].ids),
        train=train,
        rank=0,
        world_size=1,
        seed=seed,
    )
    for indices in order:
        rows = [dataset[i] for i in indices]
        batch = collate_vlm_batch(
            [row.text() for row in rows],
            max_seq_length,
            pad_to_multiple=pad_to_multiple,
            pad_token_id=pad_token_id,
        )
        length = batch["input_ids"].shape[1]
        batch.update(_collate_media([row.media(length) for row in rows]))
        yield batch


def _answer_loss(model: Any, batch: Mapping[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
    """Next-token cross-entropy on the answer tokens only (mlx-vlm's `forward_vlm_logits` and
    `cross_entropy`), under a causal mask: see the module note on `vlm_sft_loss`."""
    import mlx.core as mx
    from mlx_vlm.trainer.losses.cross_entropy import cross_entropy
    from mlx_vlm.trainer.vlm.sft.runtime import forward_vlm_logits

    ids = batch["input_ids"]
    supervised = mx.logical_and(
        batch["attention_mask"][:, 1:] > 0, batch["completion_mask"][:, 1:] > 0
    )
    logits = forward_vlm_logits(model, ids[:, :-1], None, batch)
    return cross_entropy(logits, ids[:, 1:], supervised)


def _adapter(inspector: Inspector) -> Adapter:
    """A fresh architecture adapter on the Inspector's model: the same preprocessing and image
    placeholder layout as the Inspector's own."""
    from pnp_vision.inspect.models import adapter_for

    model = inspector.model
    config = {"model_type": model.config.model_type}
    return adapter_for(model, inspector.processor, config, inspector.runtime)


def _row(inspector: Inspector, adapter: Adapter, example: Example) -> _Row:
    from pnp_vision.inspect import Question, imageprep

    template = inspector.templates.get(example.template)
    view = imageprep.prepare(
        _image(example.image),
        template_roi=template.roi,
        max_pixels=template.max_pixels,
        keep_array=True,
        view_size=template.view,  # the engine's call: the same image at any camera size
        mirror=template.mirroring(example.params),
    )
    inputs = adapter.preprocess(view, template.max_pixels)
    prompt = inspector.prompt(Question(template=example.template, params=example.params))
    tokenizer = inspector.processor.tokenizer
    ids = adapter.expand_image(list(tokenizer.encode(prompt, add_special_tokens=False)), inputs)
    plan = inspector.answer_plan(example.template)
    answer = list(plan.sequences[plan.answers.index(example.answer)])
    return _Row(ids + answer, len(ids), view, template.max_pixels, adapter)


# -- measuring through the Inspector ----------------------------------------------------------


def label_probabilities(inspector: Inspector, examples: Sequence[Example]) -> list[float]:
    """The Inspector's probability of each example's labelled answer (the inference path, with
    whatever adapter is on the model)."""
    from pnp_vision.inspect import Question

    probabilities = []
    for example in examples:
        question = Question(template=example.template, params=example.params)
        result = inspector.inspect(_image(example.image), [question])[0]
        probabilities.append(result.probabilities[example.answer])
    return probabilities


def accuracy(inspector: Inspector, examples: Sequence[Example]) -> float | None:
    """Share of examples whose most probable answer is the label; None for no examples."""
    if not examples:
        return None
    from pnp_vision.inspect import Question

    right = 0
    for example in examples:
        question = Question(template=example.template, params=example.params)
        right += inspector.inspect(_image(example.image), [question])[0].answer == example.answer
    return right / len(examples)


def _check_examples(inspector: Inspector, examples: Sequence[Example]) -> None:
    for i, example in enumerate(examples):
        template = inspector.templates.get(example.template)  # UnknownTemplate
        template.render(example.params)  # BadParams
        if example.answer not in template.answers:
            raise ConfigError(
                f"example {i}: answer {example.answer!r} is not one of template"
                f" {example.template!r}'s ({', '.join(template.answers)})"
            )


def split_heldout(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(train, held-out) by frame: a seeded random `fraction` of the frames is held out with
    every question asked of them, so no held-out frame was ever trained on (under another
    question); at least one frame each way when there are two or more, file order kept."""
    import numpy as np

    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"held-out fraction {fraction} must be in [0, 1)")
    frames = list(dict.fromkeys(str(e.image) for e in examples))
    n = len(frames)
    held = round(n * fraction)
    if fraction > 0 and n >= 2:
        held = min(max(held, 1), n - 1)
    chosen = {frames[i] for i in np.random.default_rng(seed).permutation(n)[:held].tolist()}
    train = [e for e in examples if str(e.image) not in chosen]
    heldout = [e for e in examples if str(e.image) in chosen]
    return train, heldout


# -- training -------------------------------------------------------------------------------


class _LossLog:
    """mlx-vlm `TrainingCallback`: keeps the training loss of every report (every step here)."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.losses: list[float] = []
        self._progress = progress

    def on_train_loss_report(self, info: dict[str, Any]) -> None:
        self.losses.append(float(info["train_loss"]))
        if self._progress is not None:
            self._progress(f"step {info['iteration']} loss {self.losses[-1]:.4f}")

    def on_val_loss_report(self, info: dict[str, Any]) -> None:
        pass


def train_lora(
    model_dir: Path,
    examples: Iterable[Example],
    out: Path,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    steps: int = 100,
    lr: float = 1e-4,
    seed: int = 0,
    holdout: float = 0.2,
    batch_size: int = 1,
    templates: TemplateSet | None = None,
    inspector: Inspector | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoraReport:
    """Fine-tune LoRA adapters on `model_dir`'s language model for the examples' templates and
    write the adapter folder `out`; held-out accuracy is measured through the Inspector before
    and after. Pass a loaded `inspector` (for `model_dir`) to reuse it: its model comes back
    without the adapter. `alpha / rank` is the LoRA scale, as in mlx-vlm."""
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx_vlm.trainer import Trainer, VLMTrainingArgs, get_peft_model
    from mlx_vlm.trainer.vlm.sft.runtime import make_task

    started = time.perf_counter()
    model_dir, out = Path(model_dir), Path(out)
    examples = list(examples)
    if not examples:
        raise ConfigError("no labelled examples to train on")
    if steps < 1 or rank < 1 or lr <= 0:
        raise ConfigError(f"steps ({steps}), rank ({rank}) and lr ({lr}) must be positive")
    if inspector is None:
        from pnp_vision.inspect import Inspector, TemplateSet

        if templates is None:
            from pnp_vision.config import load_settings

            templates = TemplateSet.load(load_settings().prompts_dir)
        inspector = Inspector(model_dir, templates)
    elif inspector.model_dir.resolve() != model_dir.resolve():
        raise ConfigError(f"the inspector holds {inspector.model_dir}, not {model_dir}")
    model = inspector.model
    if batch_size > 1 and model.config.model_type == "mllama":
        raise ConfigError(
            "mllama trains with batch_size 1: mlx-vlm 0.7.10's mllama forward mixes up the"
            " vision tiles of a batch of images"
        )
    if lora_modules(model):
        raise ConfigError("the model already has an adapter: unload it before training")
    _check_examples(inspector, examples)
    train, heldout = split_heldout(examples, holdout, seed)
    if len(train) < batch_size:
        raise ConfigError(f"{len(train)} training examples, fewer than batch size {batch_size}")
    before = accuracy(inspector, heldout)
    adapter = _adapter(inspector)
    rows = [_row(inspector, adapter, e) for e in train]
    tokenizer = inspector.processor.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    args = VLMTrainingArgs(
        batch_size=batch_size,
        iters=steps,
        steps_per_report=1,
        steps_per_eval=None,
        steps_per_save=steps + 1,  # only the final save: no numbered checkpoints
        adapter_file=str(out / WEIGHTS_FILE),
        max_seq_length=max(len(r.ids) for r in rows) + 1,  # never truncate an answer
        pad_to_multiple=1,
        pad_token_id=int(pad or 0),
        train_on_completions=True,
    )
    log = _LossLog(progress)
    mx.random.seed(seed)  # the LoRA A matrices are drawn from MLX's global generator
    try:
        get_peft_model(model, rank=rank, alpha=alpha, dropout=0.0, verbose=False)
        fast_paths(model, adapters_on=True)  # the after-accuracy must run through LoRA
        task = make_task(model, args, loss_fn=_answer_loss, iterate_batches=_iterate_batches)
        trainer = Trainer(
            model,
            args,
            task=task,
            train_dataset=rows,
            optimizer=optim.Adam(learning_rate=lr),
            prepared=True,
            training_callback=log,
            seed=seed,
        )
        trainer.train()
        model.eval()
        after = accuracy(inspector, heldout)
    finally:
        unload_adapter(model)
        model.eval()
    learned = tuple(sorted({e.template for e in examples}))
    report = LoraReport(
        adapter_dir=out,
        base_fingerprint=base_fingerprint(model_dir),
        templates=learned,
        losses=log.losses,
        train_examples=len(train),
        heldout_examples=len(heldout),
        accuracy_before=before,
        accuracy_after=after,
        seconds=time.perf_counter() - started,
        settings={
            "rank": rank,
            "alpha": alpha,
            "steps": steps,
            "lr": lr,
            "seed": seed,
            "holdout": holdout,
            "batch_size": batch_size,
        },
    )
    meta = {
        "format": FORMAT,
        "base": {
            "path": str(model_dir.resolve()),
            "fingerprint": report.base_fingerprint,
            "model_type": model.config.model_type,
        },
        "templates": list(learned),
        "report": {k: v for k, v in asdict(report).items() if k != "adapter_dir"},
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return report


__all__ = [
    "Example",
    "LoraReport",
    "accuracy",
    "examples_from_recording",
    "label_probabilities",
    "split_heldout",
    "train_lora",
]
