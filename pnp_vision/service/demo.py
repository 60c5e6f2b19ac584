"""`pnp-vision demo`: the whole service, end to end, on the bundled recording.

Starts the capture daemon (cameras/demo.toml replays recordings/demo) and the worker as real
processes on fresh ipc:// endpoints, asks every template the worker lists on fresh frames through
`VisionClient`, prints one table row per answer, and stops both. Nothing is downloaded: the
worker runs the trained model in `models/pnp-inspector` when it exists, else the cached tiny
model (random weights: its answers show the plumbing, not vision).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from pnp_vision.config import load_settings
from pnp_vision.errors import PnpVisionError

log = logging.getLogger(__name__)

CAMERA = "demo"
# Values for parameters declared by a pattern only (choices give their own first value).
_EXAMPLE_VALUES = {"marking": "R0603"}
_COLUMNS = (
    ("camera", 8),
    ("seq", 6),
    ("age ms", 7),
    ("template", 20),
    ("params", 22),
    ("answer", 8),
    ("prob", 6),
    ("conf", 5),
    ("rtt ms", 8),
    ("model ms", 9),
)


def example_params(template: dict[str, Any]) -> dict[str, str]:
    """A valid parameter set for a template listing (as `templates` returns it)."""
    params: dict[str, str] = {}
    for name, spec in (template.get("params") or {}).items():
        if spec.get("choices"):
            params[name] = spec["choices"][0]
        elif name in _EXAMPLE_VALUES:
            params[name] = _EXAMPLE_VALUES[name]
        else:
            raise PnpVisionError(
                f"demo has no example value for parameter {name!r} of {template.get('name')}"
            )
    return params


def _row(values: dict[str, Any]) -> str:
    return " ".join(f"{values.get(name, '')!s:<{width}}"[:width] for name, width in _COLUMNS)


def run_demo(
    *,
    model_dir: Path | None = None,
    rounds: int = 1,
    cameras_dir: Path | None = None,
    out: TextIO = sys.stdout,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run the demo; returns (table rows, failure messages). Prints as it goes."""
    from pnp_vision.client import VisionClient
    from pnp_vision.logs import setup_logging
    from pnp_vision.service.launch import DEMO_CAMERAS, model_for_demo, service_stack

    settings = load_settings()
    setup_logging("WARNING")
    started = time.monotonic()
    model_dir = model_dir or model_for_demo(settings)
    print(f"model: {model_dir}", file=out)
    cameras_dir = cameras_dir or DEMO_CAMERAS
    print(f"starting capture ({cameras_dir}) and worker ...", file=out, flush=True)
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    with service_stack(model_dir=model_dir, cameras=(CAMERA,), cameras_dir=cameras_dir) as stack:
        info = stack.status.model.info
        print(
            f"ready in {time.monotonic() - started:.1f} s: model {info.get('model_type', '?')} "
            f"on {info.get('device', '?')}, requests {stack.requests_endpoint}",
            file=out,
        )
        print(_row({name: name for name, _ in _COLUMNS}), file=out)
        with VisionClient(stack.requests_endpoint, timeout=30.0, retries=1) as client:
            templates = client.templates()
            for _ in range(rounds):
                for template in templates:
                    row = _ask(client, template, failures)
                    rows.append(row)
                    print(_row(row), file=out, flush=True)
        codes = stack.stop()
    for name, code in codes.items():
        if code != 0:
            failures.append(f"{name} exited with {code}")
    answered = sum(1 for r in rows if r.get("error") is None)
    print(
        f"{answered}/{len(rows)} questions answered on live frames in "
        f"{time.monotonic() - started:.1f} s; capture and worker stopped "
        f"(exit codes {codes['capture']}, {codes['worker']})",
        file=out,
    )
    for failure in failures:
        print(f"FAILED: {failure}", file=out)
    return rows, failures


def _ask(client: Any, template: dict[str, Any], failures: list[str]) -> dict[str, Any]:
    name = template["name"]
    row: dict[str, Any] = {"camera": CAMERA, "template": name, "error": None}
    try:
        params = example_params(template)
        row["params"] = ",".join(f"{k}={v}" for k, v in params.items()) or "-"
        result = client.inspect(CAMERA, name, params, frame="fresh", deadline=20.0)
    except PnpVisionError as exc:
        row["answer"] = f"ERROR {exc.code.value}"
        row["error"] = str(exc)
        failures.append(f"{name}: [{exc.code.value}] {exc}")
        return row
    r = result.result
    frame = result.frame
    row.update(
        seq=frame.seq if frame else None,
        **{"age ms": f"{frame.age_ms:.0f}" if frame and frame.age_ms is not None else "-"},
        answer=r.answer,
        prob=f"{r.probabilities[r.answer]:.3f}",
        conf="yes" if r.confident else "no",
        **{
            "rtt ms": f"{result.round_trip_ms:.1f}",
            "model ms": f"{result.timings.inference_ms:.1f}",
        },
    )
    return row
