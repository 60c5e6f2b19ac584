"""`pnp-vision train`: fine-tune a small inspector on a rig's own labelled recordings.

The project's trainer (`trainer.Trainer`: the engine's own vision and language passes, the loss
on the answer tokens) runs on batches of the user's frames instead of generated ones:
each slot of a batch is one labelled question on its own frame, so every batch has one shape
(one compiled step). A held-out split (by frame) is scored through the normal Inspector before
and after, and the per-template calibration is refitted on it, so `confident` stays honest for
the new rig. Real models (Qwen2.5-VL, Llama-3.2-Vision) are tuned with `--lora` (`lora.py`).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pnp_vision.errors import ConfigError
from pnp_vision.teach.lora import Example, split_heldout

RECORD_FILE = "training.json"


@dataclass
class FineTuneReport:
    out: Path
    base: Path
    templates: tuple[str, ...]
    steps: int
    losses: list[float]
    train_examples: int
    heldout_examples: int
    accuracy_before: dict[str, float]
    accuracy_after: dict[str, float]
    learned_templates: list[str]
    seconds: float

    def summary(self) -> str:
        rows = [f"{'template':<22}{'before':>8}{'after':>8}"]
        for name in self.templates:
            before = self.accuracy_before.get(name)
            after = self.accuracy_after.get(name)
            rows.append(f"{name:<22}{_pct(before):>8}{_pct(after):>8}")
        return "\n".join(rows)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def heldout_answers(
    model_dir: Path, templates: Any, examples: Sequence[Example], *, calibrated: bool
) -> dict[str, tuple[list[list[float]], list[int]]]:
    """Per template: each held-out question's probabilities (in the template's answer order)
    and the labelled answer's index, through the normal Inspector."""
    from pnp_vision.inspect import Inspector, Question
    from pnp_vision.teach.lora import _image

    inspector = Inspector(model_dir, templates, calibrated=calibrated)
    out: dict[str, tuple[list[list[float]], list[int]]] = {}
    for e in examples:
        (r,) = inspector.inspect(_image(e.image), [Question(template=e.template, params=e.params)])
        answers = list(templates.get(e.template).answers)
        rows, targets = out.setdefault(e.template, ([], []))
        rows.append([r.probabilities[a] for a in answers])
        targets.append(answers.index(e.answer))
    return out


def accuracies(answers: dict[str, tuple[list[list[float]], list[int]]]) -> dict[str, float]:
    """Per template, the share of questions whose most probable answer is the labelled one."""
    from pnp_vision.inspect.calibration import accuracy

    return {name: accuracy(rows, targets) for name, (rows, targets) in sorted(answers.items())}


def _calibrate(out: Path, answers: dict[str, Any], base: Path) -> dict[str, Any]:
    """Refit the trained templates' temperatures on the held-out split; keep the base's entries
    for templates this run did not touch (they are inherited, not re-measured)."""
    from pnp_vision.inspect.calibration import CALIBRATION_FILE, fit_temperature, write_calibration
    from pnp_vision.teach.trainer import LEARNED_BAR

    inherited: dict[str, Any] = {}
    base_file = base / CALIBRATION_FILE
    if base_file.is_file():
        inherited = json.loads(base_file.read_text())
    accuracy = accuracies(answers)
    templates = dict(inherited.get("templates", {}))
    for name, (rows, targets) in answers.items():
        templates[name] = {
            "temperature": round(fit_temperature(rows, targets), 4),
            "questions": len(rows),
            "accuracy": accuracy[name],
        }
    learned = {t for t in inherited.get("learned_templates", []) if t not in answers}
    learned |= {name for name, acc in accuracy.items() if acc >= LEARNED_BAR}
    record = {
        **{k: v for k, v in inherited.items() if k not in ("templates", "learned_templates")},
        "learned_templates": sorted(learned),
        "templates": dict(sorted(templates.items())),
        "fine_tuned_on": sorted(answers),
    }
    write_calibration(out, record)
    return record


# 900 steps of 16: on a rig past the shipped model's ranges (bench/teach_new_rig.py) 98% of
# 200 nozzle questions of a second recording, against 94-96.5% at 600 steps; 200 s on 2 cores
STEPS = 900
SHIFT = 0.15  # a `shift` symmetry moves the view by up to this share of its size each way


def augmented(bgr: Any, template: Any, rng: random.Random) -> Any:
    """The frame with the template's view changed as its `symmetries` allow: mirrored by a
    random choice of its flips (each on or off) and, with `shift`, cut from a box moved by a
    random amount up to `SHIFT` of its size each way (kept inside the frame). A few hundred
    labelled frames then show the model many more views, all with the same answer. The view's
    box is rewritten in place, so the view the model sees is exactly the changed view."""
    from pnp_vision.inspect.views import view_box

    if not template.symmetries or template.view is None:
        return bgr
    flips = [s for s in template.symmetries if s != "shift" and rng.random() < 0.5]
    height, width = bgr.shape[:2]
    left, top, right, bottom = view_box((width, height), template.roi, template.view)
    dx = dy = 0
    if "shift" in template.symmetries:
        dx = round(rng.uniform(-SHIFT, SHIFT) * (right - left))
        dy = round(rng.uniform(-SHIFT, SHIFT) * (bottom - top))
        dx, dy = min(max(dx, -left), width - right), min(max(dy, -top), height - bottom)
    out = bgr.copy()
    # from the original frame: never a view of what is being written
    box = bgr[top + dy : bottom + dy, left + dx : right + dx]
    if "flip_x" in flips:
        box = box[:, ::-1]
    if "flip_y" in flips:
        box = box[::-1]
    out[top:bottom, left:right] = box
    return out


def fine_tune(
    base: Path,
    examples: Sequence[Example],
    out: Path,
    templates: Any,
    *,
    steps: int = STEPS,
    batch: int = 16,
    lr: float = 2e-4,
    seed: int = 0,
    holdout: float = 0.2,
    force: bool = False,
    progress: Callable[[str], None] = print,
) -> FineTuneReport:
    """Copy `base` to `out`, train every weight on `examples`, refit the calibration."""
    import cv2
    import numpy as np

    from pnp_vision.teach.batches import make_batch
    from pnp_vision.teach.trainer import StepConfig, Trainer, save_weights

    started = time.perf_counter()
    base, out = Path(base), Path(out)
    if not (base / "config.json").is_file():
        raise ConfigError(f"--from {base}: not a model folder (no config.json)")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"--out {out} is not empty (add --force to replace it)")
        shutil.rmtree(out)
    if steps < 1 or batch < 1 or lr <= 0:
        raise ConfigError(f"steps ({steps}), batch ({batch}) and lr ({lr}) must be positive")
    learned = tuple(sorted({e.template for e in examples}))
    for e in examples:
        answers = templates.get(e.template).answers
        if e.answer not in answers:
            raise ConfigError(f"{e.image}: label {e.answer!r} is not an answer of {e.template}")
    train, heldout = split_heldout(list(examples), holdout, seed)
    if not train or not heldout:
        raise ConfigError(f"{len(examples)} labelled questions: too few to hold some out")
    progress(
        f"{len(train)} questions to train on, {len(heldout)} held out; templates "
        + ", ".join(learned)
    )
    before = accuracies(heldout_answers(base, templates, heldout, calibrated=False))
    progress("held-out accuracy before: " + ", ".join(f"{k} {_pct(v)}" for k, v in before.items()))

    shutil.copytree(base, out)
    images = {str(e.image): cv2.imread(str(e.image)) for e in train}
    bad = [path for path, image in images.items() if image is None]
    if bad:
        raise ConfigError(f"cannot read frame {bad[0]}")
    sizes = tuple(sorted({(i.shape[1], i.shape[0]) for i in images.values()}))
    cfg = StepConfig(
        seed=seed, steps=steps, lr=lr, warmup=max(1, min(20, steps // 5)), sizes=sizes,
        templates=learned, caps={}, compile=True,
        geometry_weight=0.0,  # a rig's labels are answers only
    )  # fmt: skip
    try:
        trainer = Trainer(out, cfg, templates)
    except ValueError as exc:  # e.g. a template whose parameters have no fixed choices
        raise ConfigError(f"cannot fine-tune {', '.join(learned)}: {exc}") from exc
    rng = random.Random(seed)
    by_template: dict[str, list[Example]] = {}
    for e in train:
        by_template.setdefault(e.template, []).append(e)
    order = sorted(by_template)
    losses: list[float] = []
    window: list[bool] = []
    for step in range(1, steps + 1):
        # every template gets an equal share of the slots, however many labels each has: a
        # check asked on every frame must not crowd out the one asked on a few
        chosen = [
            rng.choice(by_template[order[(step * batch + i) % len(order)]]) for i in range(batch)
        ]
        frames = [
            (augmented(images[str(e.image)], templates.get(e.template), rng),
             {"questions": [{"template": e.template, "params": e.params, "answer": e.answer}]})
            for e in chosen
        ]  # fmt: skip
        loss, hits = trainer.train_step(make_batch(trainer.tables, frames))
        losses.append(loss)
        window = (window + [bool(h) for h in np.array(hits).tolist()])[-10 * batch :]
        if step % 25 == 0 or step == steps:
            progress(
                f"step {step}/{steps} loss {np.mean(losses[-25:]):.4f}"
                f" train accuracy {100 * np.mean(window):.1f}%"
                f" ({time.perf_counter() - started:.0f} s)"
            )
    save_weights(trainer.model, out)
    del trainer
    answers = heldout_answers(out, templates, heldout, calibrated=False)
    after = accuracies(answers)
    record = _calibrate(out, answers, base)
    report = FineTuneReport(
        out=out, base=base, templates=learned, steps=steps, losses=losses,
        train_examples=len(train), heldout_examples=len(heldout), accuracy_before=before,
        accuracy_after=after, learned_templates=record["learned_templates"],
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    meta = {
        "fine_tuned_from": str(base.resolve()),
        "recipe": asdict(replace(cfg)),
        "report": {k: v for k, v in asdict(report).items() if k != "losses"},
    }
    (out / RECORD_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return report
