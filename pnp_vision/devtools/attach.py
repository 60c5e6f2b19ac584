"""Attach templates trained in another folder to a base folder, as that base's own weights
adapter (the format `pnp-vision train` writes: `inspect/template_weights.py`).

    python -m pnp_vision.devtools.attach --base models/pnp-inspector --trained RUN \\
        --templates part_marking,polarity_mark

`RUN` is a folder `devtools.train` continued from the base (`--init-from`, same widths and
tokenizer) on the given templates only. Every tensor that differs from the base's goes into
`adapters/<templates>/`; the templates' temperatures, learned flags and familiarity statistic
come from RUN (they were measured with its weights, which is what answers them); everything
else in the base stays as it was. So the base's own templates answer bit for bit as before.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _parameters(folder: Path) -> dict[str, Any]:
    from mlx.utils import tree_flatten

    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.inspect import Inspector, TemplateSet

    inspector = Inspector(folder, TemplateSet.load(PROJECT_ROOT / "prompts"), calibrated=False)
    return dict(tree_flatten(inspector.model.parameters()))


def attach(base: Path, trained: Path, templates: list[str]) -> str:
    """Write the adapter and merge the records; returns the adapter's path in `base`."""
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    import mlx.core as mx

    from pnp_vision.inspect.calibration import CALIBRATION_FILE, write_calibration
    from pnp_vision.inspect.familiarity import Familiarity, write_familiarity
    from pnp_vision.teach.train import write_weights_adapter

    run_cal = json.loads((trained / CALIBRATION_FILE).read_text())
    missing = [t for t in templates if t not in run_cal.get("templates", {})]
    if missing:
        raise SystemExit(f"{trained}: not trained on {', '.join(missing)}")
    own, theirs = _parameters(base), _parameters(trained)
    if set(own) != set(theirs) or any(own[k].shape != theirs[k].shape for k in own):
        raise SystemExit(f"{trained} is not {base} continued (other widths)")
    changed = {k: v for k, v in theirs.items() if not mx.array_equal(v, own[k]).item()}
    record = json.loads((trained / "training.json").read_text())
    report = {
        "trained_in": str(trained),
        "heldout": record.get("heldout"),
        "config": record.get("config"),
        "device": record.get("device"),
        "train_seconds": record.get("train_seconds"),
    }
    where = write_weights_adapter(base, templates, changed, own, report)

    cal = json.loads((base / CALIBRATION_FILE).read_text())
    cal["templates"] = dict(
        sorted({**cal["templates"], **{t: run_cal["templates"][t] for t in templates}}.items())
    )
    learned = set(cal.get("learned_templates", [])) - set(templates)
    learned |= set(run_cal.get("learned_templates", [])) & set(templates)
    cal["learned_templates"] = sorted(learned)
    cal["trained_templates"] = sorted({*cal.get("trained_templates", []), *templates})
    write_calibration(base, cal)

    fam = Familiarity.load(trained)
    meta = json.loads((trained / "familiarity.json").read_text())["templates"]
    fitted = {t: (fam.templates[t], meta[t]) for t in templates if t in fam.templates}
    if fitted:
        write_familiarity(base, fam.probes, fitted)
    return where


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pnp_vision.devtools.attach", description=__doc__)
    p.add_argument("--base", type=Path, required=True)
    p.add_argument("--trained", type=Path, required=True)
    p.add_argument("--templates", required=True, help="comma-separated")
    args = p.parse_args(argv)
    templates = [t.strip() for t in args.templates.split(",") if t.strip()]
    print(attach(args.base, args.trained, templates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
