"""Score a model on every second-look family: the project's own evaluation, family by family.

    python -m pnp_vision.devtools.second_look.evaluate --model models/pnp-inspector \\
        --out /tmp/second-look --frames 60

Writes each family's recording under `--out` (a folder already there with the same seed and
frame count is reused), runs `pnp-vision eval --json` on each (one model load), prints a
template x family table of accuracy / confident-and-wrong share / coverage (the share of
answers that clear the confidence bar: what a machine acts on), and writes all of it as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from pnp_vision.config import DEFAULT_MIN_CONFIDENCE
from pnp_vision.devtools.second_look.families import FAMILIES
from pnp_vision.devtools.second_look.record import META, write_recording

DEFAULT_SEED = 30  # any seed: nothing trains on the second look


def make(out: Path, names: list[str], seed: int, frames: int) -> dict[str, Path]:
    """Each family's recording under `out`, written unless one of this seed and size is there."""
    folders = {}
    for name in names:
        folder = out / name
        meta = folder / META
        want = {"stream": name, "seed": seed, "frames": frames}
        if not (meta.is_file() and json.loads(meta.read_text()) == want):
            if folder.exists():
                shutil.rmtree(folder)
            write_recording(
                folder,
                FAMILIES[name],
                stream=name,
                seed=seed,
                frames=frames,
                png_level=1,
                progress=True,
            )
        folders[name] = folder
    return folders


def run(model: Path, folders: dict[str, Path], min_confidence: float) -> dict[str, Any]:
    """`pnp-vision eval --json` of every recording, by name (one model load; a taught
    template through the folder's own adapter, as the worker answers it)."""
    from pnp_vision.evaluation.evaluate import evaluate_folders

    return evaluate_folders(model, folders, min_confidence)


def totals(reports: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per template over all families: questions, accuracy, confident-and-wrong, coverage."""
    out: dict[str, dict[str, Any]] = {}
    for report in reports.values():
        for name, s in report["templates"].items():
            t = out.setdefault(
                name,
                {
                    "questions": 0,
                    "correct": 0,
                    "confident_wrong": 0,
                    "below_bar": 0,
                    "trained": s["trained"],
                },
            )
            for key in ("questions", "correct", "confident_wrong", "below_bar"):
                t[key] += s[key]
    for t in out.values():
        n = t["questions"]
        t["accuracy"] = t["correct"] / n if n else 0.0
        t["confident_wrong_share"] = t["confident_wrong"] / n if n else 0.0
        t["coverage"] = 1 - t["below_bar"] / n if n else 0.0
    return out


def _cell(s: dict[str, Any] | None) -> str:
    """One family's template stats (as `pnp-vision eval --json` gives them), in whole %."""
    if s is None:
        return "-"
    coverage = 1 - s["below_bar_share"]
    return (
        f"{100 * s['accuracy']:.0f} / {100 * s['confident_wrong_share']:.0f} / {100 * coverage:.0f}"
    )


def table(reports: dict[str, Any]) -> str:
    """Markdown, one row per template: each family's accuracy / confident-and-wrong /
    coverage (%), then all families together with the question count."""
    summary = totals(reports)
    families = list(reports)
    lines = [
        "| template | " + " | ".join(families) + " | all (n) |",
        "|---|" + "---|" * (len(families) + 1),
    ]
    for name in sorted(summary):
        mark = " (untrained)" if summary[name]["trained"] is False else ""
        cells = [_cell(reports[f]["templates"].get(name)) for f in families]
        t = summary[name]
        total = (
            f"{100 * t['accuracy']:.1f} / {100 * t['confident_wrong_share']:.1f} /"
            f" {100 * t['coverage']:.1f} ({t['questions']})"
        )
        lines.append(f"| {name}{mark} | " + " | ".join(cells) + f" | {total} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pnp_vision.devtools.second_look.evaluate",
        description="Evaluate a model on every second-look family (pnp-vision eval per family).",
    )
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="folder for the recordings")
    p.add_argument("--frames", type=int, default=60, help="frames per family (default 60)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--family", action="append", choices=list(FAMILIES), help="only these")
    p.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    p.add_argument("--json", type=Path, help="report file (default OUT/second_look_eval.json)")
    args = p.parse_args(argv)
    folders = make(args.out, args.family or list(FAMILIES), args.seed, args.frames)
    reports = run(args.model, folders, args.min_confidence)
    result = {
        "model": str(args.model),
        "seed": args.seed,
        "frames": args.frames,
        "min_confidence": args.min_confidence,
        "totals": totals(reports),
        "families": reports,
    }
    path = args.json or args.out / "second_look_eval.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"model {args.model}, seed {args.seed}, {args.frames} frames a family,"
        f" bar {args.min_confidence:g}"
    )
    print("accuracy % / confident and wrong % / coverage % (answers clearing the bar)")
    print(table(reports))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
