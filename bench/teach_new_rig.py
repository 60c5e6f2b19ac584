"""A new rig, learned fast: the shipped inspector fine-tuned on frames from settings it never saw.

Makes a labelled recording with the generator at settings outside the shipped model's training
ranges (by default 1024x768 frames, a camera size it never trained on; the crosshair 34-40
units off centre, tips of radius 50-56, drawn as outlines: all past its ranges), then
runs what `pnp-vision train --from models/pnp-inspector` runs (`teach.train.fine_tune`) on it and
prints held-out accuracy per template before and after, with the time it took, on the
split the command holds out and on a second recording of the same rig (another seed, never
trained on: many more questions). Goal (issue #18): >= 97% after on both, for each template,
within 5 minutes on 2 cores.

    .venv/bin/python bench/teach_new_rig.py [--frames 400] [--steps N] [--lr 2e-4]

Prints a table and writes bench/results/teach_new_rig.json; exits 1 if the goal is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOAL_ACCURACY = 0.97
GOAL_SECONDS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=400, help="half nozzle, half part held")
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--shift", default="34:40")
    parser.add_argument("--tip-radius", default="50:56")
    parser.add_argument("--tip-style", default="outline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--test-frames", type=int, default=400,
        help="a second recording of the same rig (another seed), never trained on",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, help="default: what `pnp-vision train` uses")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--base", type=Path, default=ROOT / "models" / "pnp-inspector")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "teach_new_rig.json"
    )
    args = parser.parse_args()

    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()  # as `pnp-vision train` does, before anything imports mlx
    from pnp_vision.inspect.templates import TemplateSet
    from pnp_vision.teach.lora import examples_from_recording
    from pnp_vision.teach.train import STEPS, accuracies, fine_tune, heldout_answers

    family = [
        "--size", args.size, "--shift", args.shift, "--tip-radius", args.tip_radius,
        "--tip-style", args.tip_style,
    ]  # fmt: skip

    def record(folder: Path, frames: int, seed: int) -> None:
        subprocess.run(
            [sys.executable, "-m", "pnp_vision.devtools.make_recording", "--out", str(folder),
             "--frames", str(frames), "--seed", str(seed),
             "--scenes", "nozzle_tip,part_held", "--png-level", "1", *family],
            check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    templates = TemplateSet.load(ROOT / "prompts")
    wanted = ("nozzle_alignment", "part_on_nozzle")
    with tempfile.TemporaryDirectory(prefix="pnp-newrig-") as tmp:
        recording, tuned = Path(tmp) / "rig", Path(tmp) / "model"
        record(recording, args.frames, args.seed)
        examples = examples_from_recording(recording, templates=wanted)
        report = fine_tune(
            args.base,
            examples,
            tuned,
            templates,
            steps=args.steps or STEPS,
            batch=args.batch,
            lr=args.lr,
            seed=args.seed,
            progress=lambda line: print(line, flush=True),
        )
        # the split held out ~40 nozzle questions (one miss is 2.5%): a second recording of
        # the same rig, never trained on, measures the same model on many more
        test = Path(tmp) / "test"
        record(test, args.test_frames, args.seed + 1000)
        test_examples = examples_from_recording(test, templates=wanted)
        fresh = {
            name: accuracies(heldout_answers(model, templates, test_examples, calibrated=False))
            for name, model in (("before", args.base), ("after", tuned))
        }
    counts = {t: sum(e.template == t for e in examples) for t in wanted}
    # held out twice: the split (few questions) and the second recording (many); both count
    met = {
        t: min(report.accuracy_after.get(t) or 0, fresh["after"].get(t) or 0) >= GOAL_ACCURACY
        for t in report.templates
    } | {"within_5_minutes": report.seconds <= GOAL_SECONDS}
    result = {
        "family": dict(
            zip(("size", "shift", "tip_radius", "tip_style"), family[1::2], strict=True)
        ),
        "labelled_questions": counts,
        "steps": report.steps,
        "batch": args.batch,
        "lr": args.lr,
        "seconds": round(report.seconds, 1),
        "train_questions": report.train_examples,
        "heldout_questions": report.heldout_examples,
        "accuracy_before": report.accuracy_before,
        "accuracy_after": report.accuracy_after,
        "second_recording": {
            "frames": args.test_frames,
            "seed": args.seed + 1000,
            "questions": {t: sum(e.template == t for e in test_examples) for t in wanted},
            "accuracy_before": fresh["before"],
            "accuracy_after": fresh["after"],
        },
        "goals": met,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    def table(befores: dict[str, float], afters: dict[str, float], labelled: dict) -> None:
        for t in report.templates:
            before, after = befores.get(t, 0), afters.get(t, 0)
            ratio = after / before if before else float("nan")
            print(
                f"{t:<20}{labelled.get(t, ''):>9}{100 * before:>8.1f}%{100 * after:>8.1f}%"
                f"{ratio:>14.2f}"
            )

    print(f"\n{'template':<20}{'labelled':>9}{'before':>9}{'after':>9}{'after/before':>14}")
    table(report.accuracy_before, report.accuracy_after, counts)
    print(f"second recording of the rig ({args.test_frames} frames, never trained on):")
    table(fresh["before"], fresh["after"], {})
    print(f"fine-tune {report.seconds:.0f} s ({report.steps} steps); wrote {args.out}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
