"""How visible are the world chip frames' corner cues in the polarity_mark view?

Renders world chip frames as training draws them (`WORLD`, the trainer's chip camera sizes by
weight, sensor noise up to 5) and as the `markings` evaluation family draws them
(`Variation(markings="world")`, 320x240, noise up to 3), with the rule off so every drawn cue
is asked, and records what `marking_view.measure` reads of each in the final frame's view: its
width (view px), its contrast against the body around it, and the most the same footprint
reads in the body's other corners ("elsewhere"; "opposite": the diagonal one alone, where
nothing or an ejector-pin mark lies, also drawn at fixed widths). The rule's thresholds must
sit above what empty corners read. Prints those tables, the share of chip frames asking
polarity_mark with the rule off and on, and how far the part sits from the view's centre.
Writes bench/results/cue_visibility.json.

    python bench/cue_visibility.py [--frames 500]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pnp_vision.devtools import marking_view
from pnp_vision.devtools.marking_parts import Shape
from pnp_vision.devtools.synthetic import Variation, render
from pnp_vision.devtools.synthetic_variation import WORLD, WORLD_SIZE_WEIGHTS, WORLD_SIZES
from pnp_vision.devtools.train_data import MIN_SIDE, _pick_size
from pnp_vision.inspect.views import view_box

FAMILIES = {"world (training)": (WORLD, 5.0), "markings (eval)": (Variation(markings="world"), 3.0)}
WIDTHS = (1.0, 2.0, 3.0, 4.0, 6.0, 10.0)  # view px: empty corners read at these widths
CONTRASTS = (6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0)


def _opposite(sight: marking_view.Sight) -> marking_view.Sight:
    """The cue's footprint turned half about the body's centre: the opposite corner."""
    cue = sight.cue
    shapes = tuple(Shape(-s.pts, s.color, s.r) for s in cue.shapes)
    return replace(sight, cue=replace(cue, at=(-cue.at[0], -cue.at[1]), shapes=shapes))


def _at_width(sight: marking_view.Sight, k: float) -> marking_view.Sight:
    """The footprint `k` times as wide, about the cue's centre."""
    cue, at = sight.cue, np.asarray(sight.cue.at)
    shapes = tuple(Shape(at + k * (s.pts - at), s.color, k * s.r) for s in cue.shapes)
    return replace(sight, cue=replace(cue, reach=k * cue.reach, shapes=shapes))


def _pct(values, qs=(10, 50, 90)) -> str:
    if not values:
        return " ".join(f"{'-':>6}" for _ in qs)
    return " ".join(f"{v:6.1f}" for v in np.percentile(values, qs))


def _size(seed: int, i: int, world: bool) -> tuple[int, int]:
    """The camera size training draws chip frame `i` at (train_data._pick_size), or 320x240."""
    if not world:
        return (320, 240)
    pick = np.random.default_rng([seed, i, 0x512E])
    return _pick_size(pick, WORLD_SIZES, WORLD_SIZE_WEIGHTS, MIN_SIDE["chip"])


def _polarity(label: dict) -> bool:
    return any(q["template"] == "polarity_mark" for q in label["questions"])


def run_family(var: Variation, noise: float, frames: int, seed: int, world: bool) -> dict:
    """Every drawn cue's readings (the rule off, so every cue is asked, as before it), and the
    share of frames asking polarity_mark without and with the rule."""
    real, rule = marking_view.measure, (marking_view.MIN_CUE_SIZE, marking_view.MIN_CUE_CONTRAST)
    records: list[dict] = []

    def recording(image, sight):
        reading = real(image, sight)
        opposite = _opposite(sight)
        empty = real(image, opposite).contrast
        widths = [real(image, _at_width(opposite, w / reading.width)).contrast for w in WIDTHS]
        records.append({"look": sight.look, "width": reading.width,
                        "contrast": reading.contrast, "elsewhere": reading.elsewhere,
                        "empty": empty, "empty_at": widths})  # fmt: skip
        return reading

    before = after = nothing = 0
    off_centre, flips = [], 0
    for i in range(frames):
        size = _size(seed, i, world)
        marking_view.measure = recording  # ask_where_seen looks both up per call
        marking_view.MIN_CUE_SIZE, marking_view.MIN_CUE_CONTRAST = 0.0, -np.inf
        try:
            _, label = render(i, seed, size, noise=noise, scenes=["chip"], variation=var)
        finally:
            marking_view.measure = real
            marking_view.MIN_CUE_SIZE, marking_view.MIN_CUE_CONTRAST = rule
        before += _polarity(label)
        _, label = render(i, seed, size, noise=noise, scenes=["chip"], variation=var)
        nothing += not label["questions"]
        if not _polarity(label):
            continue
        after += 1
        left, top, right, bottom = view_box(size, marking_view.ROI, marking_view.VIEW)
        per_view = marking_view.VIEW[0] / (right - left)
        mx, my, cx, cy = label["points"]["polarity_mark"]
        vx, vy = (left + right) / 2, (top + bottom) / 2
        off_centre.append(float(np.hypot(cx - vx, cy - vy) * per_view))
        flips += (mx < vx) != (mx < cx) or (my < vy) != (my < cy)
    return {"frames": frames, "before": before, "after": after, "nothing": nothing,
            "cues": records, "off_centre_view_px": off_centre,
            "view_quadrant_differs": flips}  # fmt: skip


def report(name: str, r: dict) -> None:
    cues = r["cues"]
    print(f"\n== {name}: {r['frames']} chip frames")
    print(f"{'look':8} {'n':>4} | {'width (view px) p10 p50 p90':>27} |"
          f" {'contrast p10 p50 p90':>20} | {'opposite p90 p99':>16} |"
          f" {'elsewhere p90 p99':>17} | shown")  # fmt: skip
    for look in ("dot", "dimple", "chamfer", "all"):
        rows = [c for c in cues if look in ("all", c["look"])]
        shown = sum(_seen(c) for c in rows)
        print(
            f"{look:8} {len(rows):4} | {_pct([c['width'] for c in rows]):>27} |"
            f" {_pct([c['contrast'] for c in rows]):>20} |"
            f" {_pct([c['empty'] for c in rows], (90, 99)):>16} |"
            f" {_pct([c['elsewhere'] for c in rows], (90, 99)):>17} |"
            f" {shown / max(1, len(rows)):5.0%}"
        )
    print("empty corners, the footprint drawn this wide (view px): contrast p95 / p99 / max")
    for k, w in enumerate(WIDTHS):
        e = [c["empty_at"][k] for c in cues]
        if e:
            p95, p99 = np.percentile(e, (95, 99))
            print(f"  {w:4g} px: {p95:5.1f} / {p99:5.1f} / {max(e):5.1f}")
    print(
        f"cues shown at MIN_CUE_SIZE {marking_view.MIN_CUE_SIZE:g} px, by MIN_CUE_CONTRAST"
        " (contrast less elsewhere):"
    )
    wide = [c for c in cues if c["width"] >= marking_view.MIN_CUE_SIZE]
    for t in CONTRASTS:
        n = sum(_standout(c) >= t for c in wide)
        print(f"  >= {t:4.0f}: {n:4} of {len(cues)} drawn ({n / max(1, len(cues)):4.0%})")
    n = r["frames"]
    print(
        f"frames asking polarity_mark: the rule off (every drawn cue asked) {r['before']}"
        f" ({r['before'] / n:.1%}); with the rule {r['after']} ({r['after'] / n:.1%});"
        f" frames asking nothing {r['nothing']}"
    )
    off = r["off_centre_view_px"]
    if off:
        print(
            f"part centre from the view centre (view px): p50 {np.median(off):.1f},"
            f" p90 {np.percentile(off, 90):.1f}, max {max(off):.1f}; cue's quadrant about the"
            f" view centre differs from its corner of the part: {r['view_quadrant_differs']}"
            f" of {len(off)}"
        )


def _standout(c: dict) -> float:
    return c["contrast"] - c["elsewhere"]


def summary(r: dict) -> dict:
    """What the JSON keeps of a family: shares and percentiles, not every cue."""
    cues, pct = r["cues"], (10, 50, 90, 99)

    def q(values) -> list[float]:
        return [round(float(v), 1) for v in np.percentile(values, pct)] if values else []

    looks = {}
    for look in ("dot", "dimple", "chamfer"):
        rows = [c for c in cues if c["look"] == look]
        looks[look] = {"n": len(rows), "shown": sum(_seen(c) for c in rows)}
        for k in ("width", "contrast", "empty", "elsewhere"):
            looks[look][k] = q([c[k] for c in rows])
    keep = ("frames", "before", "after", "nothing", "view_quadrant_differs")
    out = {k: r[k] for k in keep}
    out["percentiles"], out["looks"] = pct, looks
    out["empty_at_width"] = {
        f"{w:g}": q([c["empty_at"][k] for c in cues]) for k, w in enumerate(WIDTHS)
    }
    out["off_centre_view_px"] = q(r["off_centre_view_px"])
    return out


def _seen(c: dict) -> bool:
    return marking_view.Reading(c["width"], c["contrast"], c["elsewhere"]).shows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=500, help="chip frames per family")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--out", type=Path, default=Path("bench/results/cue_visibility.json"))
    args = p.parse_args()
    started = time.perf_counter()
    results = {}
    for name, (var, noise) in FAMILIES.items():
        results[name] = run_family(var, noise, args.frames, args.seed, name.startswith("world"))
        report(name, results[name])
    seconds = time.perf_counter() - started
    rule = {"min_cue_size": marking_view.MIN_CUE_SIZE,
            "min_cue_contrast": marking_view.MIN_CUE_CONTRAST}  # fmt: skip
    families = {name: summary(r) for name, r in results.items()}
    args.out.write_text(json.dumps({"rule": rule, "families": families, "seconds": seconds}))
    print(f"\n{seconds:.0f} s; {args.out}")


if __name__ == "__main__":
    main()
