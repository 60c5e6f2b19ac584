"""Train the small inspector model from scratch on synthetic frames.

    python -m pnp_vision.devtools.train --out /tmp/pnp-inspector

The shipped `models/pnp-inspector` is this command with the defaults below (seed 0), run as
`--no-compile --set helpers=13` on one NVIDIA H200 (mlx CUDA): 12000 steps in 443 s. Its
`training.json` records the recipe, the device, the time and the held-out accuracy. Same seed,
same kind of machine, same weights (helpers never change the batch stream); `--minutes` is a
safety cap only (a capped run is no longer reproducible and its record says `time_capped`). On
2 CPU cores a step costs 0.16-0.38 s with its frames (by machine), so the recipe takes
32-77 minutes there.

The model is a real Qwen2.5-VL (mlx-vlm's classes) with small widths, built by
`tiny_models.build_model_folder` with the project's offline tokenizer, so the result is an
ordinary model folder that `Inspector` loads like any other. The trainer is the one
`pnp-vision train` runs (`teach/trainer.py`): it trains through that same Inspector's prompt,
tokenizer, answer plan and image prep (`teach/batches.py`), so the model learns the exact
inputs it is scored on (tests/evaluation/test_train_parity.py); this module adds the synthetic
frames (`train_data`), the model's widths and the held-out check. The loss is the
cross-entropy over the template's answer tokens, what the Inspector scores, plus an auxiliary
geometry term (`geometry_weight`): YES/NO only says on which side of the label gap a nozzle
tip fell, while the drawn offset says where tip and crosshair are. With it the nozzle check
went from 76% to 85% held-out in 4000 steps (80% at weight 1, 89% at 10, where tombstone
suffered); with 14 nozzle frames a batch and 12000 steps, to 98.5%; with 16 nozzle and 9
tombstone frames (tombstone had lagged), both to 100% (the sweep: docs/evaluation.md).

What makes a step cheap:
- Each template looks at its part of the frame: the shipped templates' ROIs and views
  (`prompts/`, `inspect/views.py`) give every check the same 112x84 view at any camera size,
  12 image tokens.
- Image features start at the scale of text embeddings (the tiny builder used to draw the
  vision merger's norm scale as a bias, ~0: image tokens reached the language model 60x
  quieter than they should).
- Fast exp on the CPU (`inspect.fastmath`), the shared text before the image computed once per
  batch, frames rendered by helper processes and each batch used twice.

Recipe: fp32, AdamW at 5e-4 with warm-up and cosine decay, every nuisance the answer must not
depend on drawn at random per frame (`train_data.Recipe`: camera sizes 160x120-1920x1080, the
evaluation families' ranges of crosshair shift, tip size and style, lighting, JPEG; blur,
noise, colours), after a short clean and easy curriculum. After training, held-out frames of
the same distribution decide `learned_templates` (>= 95%) and fit each template's temperature
(`calibration.json`, read by the Inspector); `--recheck` redoes both on this machine.
docs/evaluation.md has the shipped model's figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.logs import kv, setup_logging
from pnp_vision.teach.trainer import LEARNED_BAR, StepConfig, Trainer, save_weights

log = logging.getLogger("pnp_vision.train")

LEARNED_TEMPLATES = (
    "nozzle_alignment",
    "part_on_nozzle",
    "tombstone",
    "feeder_pocket_empty",
)


@dataclass(frozen=True)
class TrainConfig(StepConfig):
    """The from-scratch recipe: the trainer's settings (`teach.trainer.StepConfig`, with this
    recipe's values) plus the model's widths, the synthetic frames and the batch stream."""

    seed: int = 0
    steps: int = 12000
    lr: float = 5e-4
    warmup: int = 100
    final_lr_fraction: float = 0.05
    weight_decay: float = 0.01
    max_pixels: int = 112 * 112  # the processor's budget; the templates' views are 112x84
    # Camera sizes drawn per frame (weights: big frames cost more to render, and a view of
    # one looks much like a view of a half-size one, so they come less often).
    sizes: tuple[tuple[int, int], ...] = (
        (160, 120), (224, 168), (320, 240), (480, 270), (640, 480), (800, 600), (1280, 720),
        (1920, 1080),
    )  # fmt: skip
    size_weights: tuple[float, ...] = (4.0, 2.0, 4.0, 2.0, 2.0, 0.4, 0.6, 0.3)
    # The families the model must be right on (docs/evaluation.md), drawn at random: the
    # crosshair anywhere in the nozzle view's middle half, tips of radius 10-50 in four styles,
    # lighting up to 2.2x the original ranges, JPEG on 40% of frames at quality 30-95.
    shift: tuple[float, float] = (0.0, 34.0)
    tip_radius: tuple[float, float] = (10.0, 50.0)
    tip_styles: tuple[str, ...] = ("metallic", "disc", "ring", "gradient")
    centred: tuple[float, float] = (0.0, 3.0)  # the whole YES side of the label gap ...
    off: tuple[float, float] = (12.0, 40.0)  # ... and the NO side: the gap itself never shows
    harshness: tuple[float, float] = (0.8, 2.2)
    jpeg_share: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 95)
    # Domain randomisation (issue 31): this share of frames, after the easy curriculum, comes
    # from the generator's WORLD preset (real packages, tips, reticles, tapes, pads, boards and
    # camera effects at real proportions; docs/evaluation.md), the rest from the ranges above.
    world_share: float = 0.0
    # The chip scene's parts in the other frames: "classic" (the generator's own chip) or
    # "world" (real packages, markings and polarity marks under the classic camera)
    markings: str = "classic"
    # Curriculum: the first `easy_batches` fresh batches keep the generator's original ranges
    # (crosshair within 20 units, radius 22-36, plain light) in every tip style, and tips at
    # least 14 units off: the concept first, then the wide ranges.
    easy_batches: int = 700
    mix: dict[str, int] = field(
        default_factory=lambda: {
            "nozzle_tip": 16,
            "part_held": 2,
            "tombstone": 9,
            "feeder_pocket": 3,
        }
    )
    # part_on_nozzle is asked on every nozzle_tip frame (NO) and part_held frame (YES): take
    # two of each per batch, so it stays balanced and the harder templates get the frames.
    caps: dict[str, int] = field(default_factory=lambda: {"part_on_nozzle": 2})
    templates: tuple[str, ...] = LEARNED_TEMPLATES
    vocab_size: int = 512
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 512
    vision_hidden: int = 64
    vision_depth: int = 4
    vision_heads: int = 4
    vision_intermediate: int = 256
    prompt_length: int = 0  # prompts are right-padded to this many tokens (0: the longest)
    heldout_seed: int = 1_000_003
    heldout_frames: int = 800  # 200 of each scene: accuracy, learned templates, temperatures
    # Familiarity (inspect/familiarity.py): the bank from these frames of the training
    # distribution, the threshold from the held-out frames above.
    familiarity_seed: int = 1_000_033
    familiarity_frames: int = 2000
    compile: bool = True
    helpers: int = 2  # processes rendering batches
    clean_steps: int = 100  # first batches on frames without lighting, blur, noise and JPEG
    # Every odd step re-uses the batch rendered this many fresh batches earlier (0: never), so
    # the renderers, which cost as much CPU as the step itself, make half as many frames.
    reuse_gap: int = 50
    # Weight of the auxiliary geometry loss: a linear head on the answer position's hidden
    # state regresses the scene's geometry behind the answer (the nozzle tip's offset from
    # the crosshair). YES/NO alone says only which side of a line a frame fell; the offset
    # tells the model where the tip and the crosshair are. The head is not saved.
    geometry_weight: float = 3.0
    # Weight of the auxiliary location loss: a linear head on every image token (the vision
    # tower's output, before the language model) regresses where the nozzle tip's centre and
    # the crosshair's centre are drawn, relative to that token. It teaches the tower to find
    # both directly, where the answer's loss reaches it only through the language model. Not
    # saved either.
    locate_weight: float = 0.0

    def recipe(self) -> Any:
        """The frame distribution (`train_data.Recipe`) these settings describe."""
        from pnp_vision.devtools.synthetic_scenes import Variation
        from pnp_vision.devtools.synthetic_variation import WORLD, WORLD_SIZE_WEIGHTS, WORLD_SIZES
        from pnp_vision.devtools.train_data import Recipe

        variation = Variation(
            shift=self.shift,
            tip_radius=self.tip_radius,
            tip_styles=self.tip_styles,
            centred=self.centred,
            off=self.off,
            harshness=self.harshness,
            markings=self.markings,
        )
        easy = Variation(tip_styles=self.tip_styles, centred=self.centred, off=(14.0, 40.0))
        world = WORLD if self.world_share else None
        return Recipe(
            self.sizes, self.size_weights, variation, self.jpeg_share, self.jpeg_quality,
            easy=easy, easy_batches=self.easy_batches, world=world,
            world_share=self.world_share, world_sizes=WORLD_SIZES,
            world_size_weights=WORLD_SIZE_WEIGHTS,
        )  # fmt: skip


def model_spec(cfg: TrainConfig) -> Any:
    from pnp_vision.devtools.tiny_models import QwenSpec

    half = cfg.hidden // cfg.heads // 2  # mrope splits head_dim / 2 into (t, h, w) as 1:1.5:1.5
    t_section = half // 4
    return QwenSpec(
        vocab_size=cfg.vocab_size,
        hidden=cfg.hidden,
        layers=cfg.layers,
        heads=cfg.heads,
        kv_heads=cfg.kv_heads,
        intermediate=cfg.intermediate,
        mrope_section=(
            t_section,
            (half - t_section) // 2,
            half - t_section - (half - t_section) // 2,
        ),
        vision_hidden=cfg.vision_hidden,
        vision_depth=cfg.vision_depth,
        vision_heads=cfg.vision_heads,
        vision_intermediate=cfg.vision_intermediate,
        fullatt_blocks=(cfg.vision_depth - 1,),
        max_pixels=cfg.max_pixels,
        seed=cfg.seed,
    )


def heldout_answers(folder: Path, cfg: TrainConfig) -> dict[str, tuple[list, list[int]]]:
    """Reload the saved folder through the normal Inspector (uncalibrated) and answer
    `cfg.heldout_frames` unseen frames of the training distribution (every scene of the mix
    equally often): per template, each answer's raw probabilities and the labelled answer."""
    from pnp_vision.devtools.train_data import training_frame
    from pnp_vision.inspect import Inspector, Question, TemplateSet

    inspector = Inspector(folder, TemplateSet.load(PROJECT_ROOT / "prompts"), calibrated=False)
    recipe, pattern = cfg.recipe(), list(cfg.mix)
    out: dict[str, tuple[list, list[int]]] = {}
    for index in range(cfg.heldout_frames):
        image, label = training_frame(index, cfg.heldout_seed, pattern, recipe)
        qs = [q for q in label["questions"] if q["template"] in cfg.templates]
        if not qs:
            continue
        results = inspector.inspect(
            image, [Question(template=q["template"], params=q["params"]) for q in qs]
        )
        for q, r in zip(qs, results, strict=True):
            answers = list(r.probabilities)
            rows, targets = out.setdefault(q["template"], ([], []))
            rows.append([r.probabilities[a] for a in answers])
            targets.append(answers.index(q["answer"]))
    return dict(sorted(out.items()))


def calibrate(folder: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Score the folder on held-out frames, decide `learned_templates` (>= 95%) and fit each
    trained template's temperature; writes the folder's calibration.json, returns its record."""
    from pnp_vision.inspect.calibration import accuracy, fit_temperature, nll, write_calibration

    templates: dict[str, Any] = {}
    for name, (rows, targets) in heldout_answers(folder, cfg).items():
        temperature = fit_temperature(rows, targets)
        templates[name] = {
            "temperature": round(temperature, 4),
            "questions": len(rows),
            "accuracy": accuracy(rows, targets),
            "nll_raw": round(nll(rows, targets, 1.0), 5),
            "nll_calibrated": round(nll(rows, targets, temperature), 5),
        }
    record = {
        "learned_templates": [n for n, t in templates.items() if t["accuracy"] >= LEARNED_BAR],
        "trained_templates": list(cfg.templates),
        "fitted_on": {"seed": cfg.heldout_seed, "frames": cfg.heldout_frames},
        "templates": templates,
    }
    write_calibration(folder, record)
    return record


def fit_familiarity_synthetic(folder: Path, cfg: TrainConfig) -> dict[str, Any]:
    """The folder's familiarity statistic for every trained template: the bank from
    `cfg.familiarity_frames` frames of the training distribution, the threshold from the
    held-out frames (the same ones calibration uses)."""
    from pnp_vision.devtools.train_data import training_frame
    from pnp_vision.inspect import Question, TemplateSet
    from pnp_vision.teach.familiarity_fit import fit_familiarity

    recipe, pattern = cfg.recipe(), list(cfg.mix)

    def views(seed: int, frames: int) -> Any:
        for index in range(frames):
            image, label = training_frame(index, seed, pattern, recipe)
            for q in label["questions"]:
                if q["template"] in cfg.templates:
                    yield Question(template=q["template"], params=q["params"]), image, q["answer"]

    about = {
        "train": {"seed": cfg.familiarity_seed, "frames": cfg.familiarity_frames},
        "heldout": {"seed": cfg.heldout_seed, "frames": cfg.heldout_frames},
    }
    return fit_familiarity(
        folder,
        TemplateSet.load(PROJECT_ROOT / "prompts"),
        views(cfg.familiarity_seed, cfg.familiarity_frames),
        views(cfg.heldout_seed, cfg.heldout_frames),
        about=about,
        keep=False,
    )


def _device() -> str:
    """What trained the folder: same seed, same weights holds on one kind of machine."""
    import platform

    import mlx.core as mx

    from pnp_vision.inspect.runtime import device_kind

    return f"{device_kind()} ({platform.machine()}), mlx {mx.__version__}"


def _tokenizer_corpus(folder: Path) -> Path:
    """A corpus for the tokenizer trainer: what the model is asked (each template's question
    with every choice of its parameters, its system text and answers) and the chat roles,
    repeated so BPE makes them single tokens. Shorter prompts make every training step
    cheaper. Only these texts count, never the template files' comments, so editing a comment
    in prompts/ cannot change the tokenizer of a retrained model."""
    from pnp_vision.inspect import TemplateSet

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    folder.mkdir()
    lines = ["system", "user", "assistant"]
    for t in templates:
        lines += [t.system, t.question, " ".join(t.answers)]
        for name, param in t.params.items():
            for value in param.choices or []:
                lines.append(t.question.replace("{" + name + "}", value))
    (folder / "zz-tokenizer-corpus.toml").write_text("\n".join(lines * 8) + "\n")
    return folder


def _log_progress(step: int, losses: list[float], window: dict[str, list[bool]], t0: float) -> None:
    accs = {n: sum(v[-200:]) / len(v[-200:]) for n, v in sorted(window.items())}
    log.info(
        "step %s",
        kv(
            step=step,
            loss=sum(losses[-50:]) / len(losses[-50:]),
            elapsed_s=time.monotonic() - t0,
            **{k[:12]: f"{v:.2f}" for k, v in accs.items()},
        ),
    )


def _train_loop(trainer: Trainer, cfg: TrainConfig, deadline: float | None) -> dict[str, Any]:
    """Run the steps; returns what the training record needs."""
    from pnp_vision.devtools.train_data import BatchStream

    t0 = time.monotonic()
    window: dict[str, list[bool]] = defaultdict(list)
    losses: list[float] = []
    steps_done, capped = 0, False
    stream = BatchStream(
        trainer.tables,
        cfg.seed,
        cfg.mix,
        cfg.recipe(),
        cfg.helpers,
        clean_batches=cfg.clean_steps,
    )
    kept: deque[Any] = deque()
    with stream:
        for step in range(cfg.steps):
            if deadline is not None and time.monotonic() > deadline:
                capped = True
                log.warning("time cap reached %s", kv(step=step))
                break
            if cfg.reuse_gap and step % 2 and len(kept) >= cfg.reuse_gap:
                batch = kept.popleft()
            else:
                batch = next(stream)
                if cfg.reuse_gap:
                    kept.append(batch)
            loss, hits = trainer.train_step(batch)
            losses.append(loss)
            for name, hit in zip(batch.template, hits.tolist(), strict=True):
                window[name].append(bool(hit))
            steps_done = step + 1
            if step % 50 == 0 or step == cfg.steps - 1:
                _log_progress(step, losses, window, t0)
    return {
        "steps": steps_done,
        "time_capped": capped,
        "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])),
    }


def train(
    out: Path, cfg: TrainConfig, minutes: float | None = None, init_from: Path | None = None
) -> dict[str, Any]:
    """Build, train, save and check the model folder `out` (must not exist yet).

    `init_from`: continue from a folder this script wrote (same widths), with a fresh schedule
    and a new batch stream seed, instead of from random weights.
    """
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    from pnp_vision.devtools.tiny_models import build_model_folder

    out = Path(out)
    if out.exists():
        raise SystemExit(f"{out} exists; choose a new folder (training never overwrites)")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = None if minutes is None else started + minutes * 60
    staging = Path(tempfile.mkdtemp(prefix=".train-", dir=out.parent))
    folder = staging / "model"
    try:
        previous = None
        if init_from is None:
            corpus = _tokenizer_corpus(staging / "c")
            build_model_folder("qwen2_5_vl", folder, model_spec(cfg), corpus)
        else:
            shutil.copytree(init_from, folder)
            previous = json.loads((folder / "training.json").read_text())
            (folder / "training.json").unlink()
        trainer = Trainer(folder, cfg)
        record = _train_loop(trainer, cfg, deadline)
        train_s = time.monotonic() - started
        save_weights(trainer.model, folder)
        calibration = calibrate(folder, cfg)
        fit_familiarity_synthetic(folder, cfg)
        accuracy = {n: t["accuracy"] for n, t in calibration["templates"].items()}
        meta = {
            "config": asdict(cfg),
            "device": _device(),
            "continued_from": previous,
            **record,
            "train_seconds": round(train_s, 1),
            "heldout": {
                "seed": cfg.heldout_seed,
                "frames": cfg.heldout_frames,
                "accuracy": accuracy,
            },
            "trained_templates": list(cfg.templates),
            # what the tests and the service hold the model to: >= 95% on unseen frames; the
            # Inspector reads it (and the temperatures) from calibration.json
            "learned_templates": calibration["learned_templates"],
        }
        (folder / "training.json").write_text(json.dumps(meta, indent=2))
        shutil.move(str(folder), out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("saved %s", kv(out=out, train_s=train_s, **accuracy))
    return meta


def recheck(folder: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Score a trained folder again on `cfg.heldout_frames` unseen frames, refit its
    calibration and familiarity and rewrite its record's held-out accuracy and
    `learned_templates` (e.g. with more frames than at first)."""
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    meta = json.loads((folder / "training.json").read_text())
    templates = tuple(meta.get("trained_templates", cfg.templates))
    calibration = calibrate(folder, replace(cfg, templates=templates))
    fit_familiarity_synthetic(folder, replace(cfg, templates=templates))
    accuracy = {n: t["accuracy"] for n, t in calibration["templates"].items()}
    meta["heldout"] = {"seed": cfg.heldout_seed, "frames": cfg.heldout_frames, "accuracy": accuracy}
    meta["learned_templates"] = calibration["learned_templates"]
    (folder / "training.json").write_text(json.dumps(meta, indent=2))
    return meta


def _setting(name: str, value: str) -> Any:
    """`--set NAME=VALUE` as the field's type; a range is written `lo,hi` (`--set off=12,30`)."""
    if name not in TrainConfig.__dataclass_fields__:
        raise SystemExit(f"--set {name}: no such setting (see TrainConfig)")
    default = getattr(TrainConfig(), name)
    try:
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(default, tuple) and default and all(type(v) in (int, float) for v in default):
            return tuple(type(default[0])(v) for v in value.split(","))
        if name == "relate":  # template names
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(default, dict | tuple):
            raise SystemExit(f"--set {name}: not settable here (use the dedicated option, if any)")
        return type(default)(value)
    except ValueError:
        raise SystemExit(f"--set {name}={value}: not a valid {type(default).__name__}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pnp_vision.devtools.train", description=__doc__)
    p.add_argument("--out", type=Path, required=True, help="new model folder to write")
    p.add_argument(
        "--recheck", action="store_true", help="only re-score the trained folder --out held out"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
    p.add_argument("--minutes", type=float, help="stop early after this many minutes")
    p.add_argument("--lr", type=float)
    p.add_argument("--no-compile", action="store_true", help="run the step uncompiled")
    p.add_argument("--clean-steps", type=int, help="first steps on clean frames")
    p.add_argument("--init-from", type=Path, help="continue from a model folder trained here")
    p.add_argument("--mix", help="frames per scene per batch, e.g. nozzle_tip=2,chip=1,...")
    p.add_argument("--caps", help="questions per answer per batch, e.g. part_on_nozzle=6")
    p.add_argument("--templates", help="templates to learn, comma-separated (default: the four)")
    p.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="any TrainConfig number"
    )
    args = p.parse_args(argv)
    setup_logging("INFO")
    overrides: dict[str, Any] = {"seed": args.seed, "compile": not args.no_compile}
    if args.steps is not None:
        overrides["steps"] = args.steps
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--set {item}: write FIELD=VALUE")
        overrides[name] = _setting(name, value)
    for option, example in (("mix", "nozzle_tip=16"), ("caps", "part_on_nozzle=6")):
        value = getattr(args, option)
        if value:
            try:
                overrides[option] = {k: int(v) for k, v in (i.split("=") for i in value.split(","))}
            except ValueError:
                raise SystemExit(f"--{option} {value}: write NAME=N,... ({example})") from None
    if args.templates:
        overrides["templates"] = tuple(t.strip() for t in args.templates.split(",") if t.strip())
    if args.clean_steps is not None:
        overrides["clean_steps"] = args.clean_steps
    if args.lr is not None:
        overrides["lr"] = args.lr
    if args.recheck:
        meta = recheck(args.out, TrainConfig(**overrides))
        print(json.dumps({k: meta[k] for k in ("heldout", "learned_templates")}, indent=2))
        return 0
    meta = train(args.out, TrainConfig(**overrides), args.minutes, args.init_from)
    print(json.dumps({k: meta[k] for k in ("steps", "train_seconds", "heldout")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
