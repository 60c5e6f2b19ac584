"""`pnp-vision train`: teach the small inspector a rig's checks from its labelled recordings,
never changing what it was not taught.

The new model folder is the base folder (its weights untouched) plus one *weights adapter* for
the templates taught (`adapters/NAME/`: the tensors the fine-tune trained, whole;
`inspect/template_weights.py`). A worker on the folder swaps it in for those templates only, so
every other template answers bit-identically to the base (issue 32: training the shared weights
took feeder_pocket_empty from 100% to 63%). The steps:

1. the labels are counted, and a template they cannot teach is refused (`readiness.py`);
2. a fifth of the frames is held out (with every question asked of them) and scored through the
   base folder as it answers now;
3. the loop (`weights_loop.py`) trains the patch on the rest, changed as each template allows and
   relit, scoring the held-out split as it goes and keeping the best checkpoint;
4. the held-out split is scored again through the new folder, as a worker answers, with a 95%
   interval; a template is marked learned only at `LEARNED_BAR`;
5. the taught templates' temperatures (`calibration.json`) and familiarity statistic are refitted
   with their adapter in place; the other templates keep the base's entries;
6. `training.json` records what was taught from: recordings, label counts, steps, time.

Real models (Qwen2.5-VL, Llama-3.2-Vision) are tuned with `--lora` (`lora.py`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pnp_vision.errors import ConfigError
from pnp_vision.teach.lora import Example, split_heldout
from pnp_vision.teach.readiness import SMALL_HELDOUT, check_teachable
from pnp_vision.teach.report import FineTuneReport, Taught, wilson
from pnp_vision.teach.weights_loop import LoopConfig, train_weights

RECORD_FILE = "training.json"
# At most 1200 steps of 16, stopped early once the held-out loss no longer falls: on the
# foreign rigs of bench/teach_new_rig.py (200 labelled frames) see docs/evaluation.md.
STEPS = 1200
LR = 2e-4

Answers = dict[str, tuple[list[list[float]], list[int]]]


def heldout_answers(
    model_dir: Path,
    templates: Any,
    examples: Sequence[Example],
    *,
    calibrated: bool,
    images: dict[str, Any] | None = None,
) -> Answers:
    """Per template: each question's probabilities (in the template's answer order) and the
    labelled answer's index, through the folder as a worker answers (its own adapters routed)."""
    from pnp_vision.inspect import Question
    from pnp_vision.inspect.adapters import open_inspector
    from pnp_vision.teach.lora import _image

    inspector = open_inspector(model_dir, templates, calibrated=calibrated)
    out: Answers = {}
    for e in examples:
        image = (images or {}).get(str(e.image))
        image = _image(e.image) if image is None else image
        (r,) = inspector.inspect(image, [Question(template=e.template, params=e.params)])
        answers = list(templates.get(e.template).answers)
        rows, targets = out.setdefault(e.template, ([], []))
        rows.append([r.probabilities[a] for a in answers])
        targets.append(answers.index(e.answer))
    return out


def accuracies(answers: Answers) -> dict[str, float]:
    """Per template, the share of questions whose most probable answer is the labelled one."""
    from pnp_vision.inspect.calibration import accuracy

    return {name: accuracy(rows, targets) for name, (rows, targets) in sorted(answers.items())}


def _right(answers: Answers, template: str) -> int:
    from pnp_vision.inspect.calibration import accuracy

    rows, targets = answers.get(template, ([], []))
    return round(accuracy(rows, targets) * len(rows))


def _calibrate(out: Path, answers: Answers, base: Path, taught: dict[str, Taught]) -> list[str]:
    """Refit the taught templates' temperatures on the held-out split; keep the base's entries
    for the others (inherited, not re-measured). Returns the folder's learned templates."""
    from pnp_vision.inspect.calibration import CALIBRATION_FILE, fit_temperature, write_calibration

    inherited: dict[str, Any] = {}
    if (base / CALIBRATION_FILE).is_file():
        inherited = json.loads((base / CALIBRATION_FILE).read_text())
    entries = dict(inherited.get("templates", {}))
    for name, (rows, targets) in answers.items():
        entries[name] = {
            "temperature": round(fit_temperature(rows, targets), 4),
            "questions": len(rows),
            "accuracy": taught[name].after,
        }
    learned = {t for t in inherited.get("learned_templates", []) if t not in taught}
    learned |= {name for name, t in taught.items() if t.learned}
    fine_tuned = sorted({*inherited.get("fine_tuned_on", []), *taught})
    record = {
        **{k: v for k, v in inherited.items() if k not in ("templates", "learned_templates")},
        "learned_templates": sorted(learned),
        "templates": dict(sorted(entries.items())),
        "fine_tuned_on": fine_tuned,
    }
    write_calibration(out, record)
    return record["learned_templates"]


def write_weights_adapter(
    out: Path,
    taught: Sequence[str],
    tensors: dict[str, Any],
    base: dict[str, Any],
    report: dict[str, Any],
) -> str:
    """The weights adapter of `taught` in the new folder (`adapters/NAME/`): `tensors` as
    deltas over the folder's own `base` tensors (the same names). The taught templates leave
    any adapter they had (a folder taught again), and an adapter left with none goes."""
    import mlx.core as mx

    from pnp_vision.inspect.adapters import FORMAT, META_FILE, base_fingerprint, own_adapters
    from pnp_vision.inspect.template_weights import (
        ADAPTERS_DIR,
        DELTA,
        KIND,
        PATCH_FILE,
        encode_patch,
    )

    for template, folder in own_adapters(out).items():
        if template in taught:
            meta = json.loads((folder / META_FILE).read_text())
            meta["templates"] = [t for t in meta["templates"] if t not in taught]
            if meta["templates"]:
                (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
            else:
                shutil.rmtree(folder)
    name = "+".join(taught)
    folder = out / ADAPTERS_DIR / name
    folder.mkdir(parents=True)
    weights = encode_patch(dict(sorted(tensors.items())), base)
    mx.save_safetensors(
        str(folder / PATCH_FILE), weights, metadata={"format": "mlx", "encoding": DELTA}
    )
    config = json.loads((out / "config.json").read_text())
    meta = {
        "format": FORMAT,
        "kind": KIND,
        "base": {
            "path": str(out.resolve()),
            "fingerprint": base_fingerprint(out),
            "model_type": config.get("model_type"),
        },
        "templates": list(taught),
        "tensors": sorted(weights),
        "parameters": int(sum(v.size for v in weights.values())),
        "report": report,
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return f"{ADAPTERS_DIR}/{name}"


def _record(out: Path, base: Path, entry: dict[str, Any]) -> None:
    """training.json: the base's own record (how its weights were made), plus this fine-tune
    appended to `fine_tunes` (a folder taught again keeps the earlier ones)."""
    record: dict[str, Any] = {}
    if (base / RECORD_FILE).is_file():
        record = json.loads((base / RECORD_FILE).read_text())
    record.setdefault("fine_tunes", []).append(entry)
    (out / RECORD_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")


def fine_tune(
    base: Path,
    examples: Sequence[Example],
    out: Path,
    templates: Any,
    *,
    steps: int = STEPS,
    batch: int = 16,
    lr: float = LR,
    seed: int = 0,
    holdout: float = 0.2,
    force: bool = False,
    recordings: Sequence[Path] = (),
    loop: LoopConfig | None = None,
    progress: Callable[[str], None] = print,
) -> FineTuneReport:
    """Copy `base` to `out` and add a weights adapter for the examples' templates (above).
    `loop`: the loop's settings beyond steps, batch, lr and seed (tests, benches)."""
    import cv2

    from pnp_vision.teach.familiarity_fit import fit_familiarity

    started, cpu = time.perf_counter(), time.process_time()
    base, out = Path(base), Path(out)
    if not (base / "config.json").is_file():
        raise ConfigError(f"--from {base}: not a model folder (no config.json)")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"--out {out} is not empty (add --force to replace it)")
        shutil.rmtree(out)
    if steps < 1 or batch < 1 or lr <= 0:
        raise ConfigError(f"steps ({steps}), batch ({batch}) and lr ({lr}) must be positive")
    counts = check_teachable(examples, templates)
    names = tuple(counts)
    train, heldout = split_heldout(list(examples), holdout, seed)
    held = {n: sum(e.template == n for e in heldout) for n in names}
    if not train or not all(held.values()):
        raise ConfigError(
            f"--holdout {holdout} leaves no held-out question of"
            f" {', '.join(n for n, k in held.items() if not k) or 'any template'}"
        )
    warnings = [
        f"{n}: {k} held-out questions (< {SMALL_HELDOUT}): one miss moves its accuracy by"
        f" {100 / k:.1f} points; label more frames for a firmer figure"
        for n, k in held.items()
        if k < SMALL_HELDOUT
    ]
    for w in warnings:
        progress(f"warning: {w}")
    images = {str(e.image): cv2.imread(str(e.image)) for e in examples}
    bad = [path for path, image in images.items() if image is None]
    if bad:
        raise ConfigError(f"cannot read frame {bad[0]}")
    labelled = ", ".join(
        f"{n} ({', '.join(f'{k} {a}' for a, k in c.items())})" for n, c in counts.items()
    )
    progress(f"{len(train)} questions to train on, {len(heldout)} held out; teaching {labelled}")
    before = heldout_answers(base, templates, heldout, calibrated=False, images=images)
    progress("held-out accuracy before: " + ", ".join(
        f"{n} {100 * a:.1f}%" for n, a in accuracies(before).items()))  # fmt: skip

    shutil.copytree(base, out)
    cfg = LoopConfig(**{**(loop.__dict__ if loop else {}), "steps": steps, "batch": batch,
                        "lr": lr, "seed": seed})  # fmt: skip
    result = train_weights(out, train, heldout, images, templates, cfg, progress=progress)
    adapter = write_weights_adapter(out, names, result.tensors, result.base, {
        "steps": result.steps, "best_step": result.best_step, "lr": lr, "batch": batch,
        "seed": seed, "trained": cfg.trained, "labels": counts,
    })  # fmt: skip
    after = heldout_answers(out, templates, heldout, calibrated=False, images=images)
    taught = {n: Taught(n, counts[n], held[n], _right(before, n), _right(after, n)) for n in names}
    for t in taught.values():
        t.judge()
    learned = _calibrate(out, after, base, taught)
    fit_familiarity(
        out,
        templates,
        [(_question(e), images[str(e.image)], e.answer) for e in train],
        [(_question(e), images[str(e.image)], e.answer) for e in heldout],
        keep=True,
    )
    report = FineTuneReport(
        out=out, base=base, taught=taught, steps=result.steps, best_step=result.best_step,
        losses=result.losses, train_examples=len(train), heldout_examples=len(heldout),
        learned_templates=learned, seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu, warnings=warnings,
    )  # fmt: skip
    _record(out, base, {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "from": str(base.resolve()),
        "adapter": adapter,
        "recordings": [str(Path(r)) for r in recordings]
        or sorted({str(Path(e.image).parent) for e in examples}),
        "labels": counts,
        "train_questions": len(train),
        "heldout_questions": len(heldout),
        "steps": result.steps, "max_steps": steps, "best_step": result.best_step,
        "batch": batch, "lr": lr, "seed": seed, "holdout": holdout, "trained": cfg.trained,
        "seconds": round(report.seconds, 1), "cpu_seconds": round(report.cpu_seconds, 1),
        "heldout": {n: {
            "questions": t.heldout, "before": t.before, "after": t.after,
            "after_interval": [round(v, 4) for v in wilson(t.right_after, t.heldout)],
            "learned": t.learned, "why": t.why,
        } for n, t in taught.items()},
        "checks": result.checks,
    })  # fmt: skip
    return report


def _question(example: Any) -> Any:
    """A labelled example's question, as the Inspector takes it."""
    from pnp_vision.inspect import Question

    return Question(template=example.template, params=dict(example.params))
