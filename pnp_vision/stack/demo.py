"""`pnp-vision demo`: the whole service, end to end, on the bundled recording.

Starts the capture daemon (cameras/demo.toml replays recordings/demo) and the worker as real
processes on fresh ipc:// endpoints, then, for every template the worker lists, waits for a live
replayed frame the recording's labels.jsonl has questions about, asks them on exactly that frame
(`frame: seq`) through `VisionClient`, and prints one row per answer next to the true label.
Nothing is downloaded: the worker runs `model_dir` (by default the bundled trained inspector,
`models/pnp-inspector` of the package's defaults or of the rig folder); a missing one stops the
demo before anything starts (`model_not_found`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

from pnp_vision.config import load_settings
from pnp_vision.errors import NoFrame, PnpVisionError
from pnp_vision.evaluation.labels import LabelledQuestion, load_labels_if_any

log = logging.getLogger(__name__)

CAMERA = "demo"
# Values for parameters declared by a pattern only (choices give their own first value).
_EXAMPLE_VALUES = {"marking": "R0603"}
_COLUMNS = (
    ("camera", 6),
    ("seq", 5),
    ("age ms", 6),
    ("template", 19),
    ("params", 22),
    ("answer", 8),
    ("prob", 5),
    ("conf", 4),
    ("trained", 7),
    ("familiar", 8),
    ("truth", 5),
    ("rtt ms", 7),
    ("model ms", 8),
)


def load_labels(cameras_dir: Path) -> dict[int, list[LabelledQuestion]]:
    """Recording seq -> labelled questions, from the demo camera's recording (empty if none)."""
    from pnp_vision.capture.cameras import load_cameras

    try:
        source = load_cameras(cameras_dir, [CAMERA])[0].source
    except PnpVisionError:
        return {}
    return {f.seq: list(f.questions) for f in load_labels_if_any(Path(str(source)))}


def example_params(template: dict[str, Any]) -> dict[str, str] | None:
    """A valid parameter set for a template listing (as `templates` returns it), or None when
    a parameter has neither choices nor a known example (a user's own template)."""
    params: dict[str, str] = {}
    for name, spec in (template.get("params") or {}).items():
        if spec.get("choices"):
            params[name] = spec["choices"][0]
        elif name in _EXAMPLE_VALUES:
            params[name] = _EXAMPLE_VALUES[name]
        else:
            return None
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
    from pnp_vision.capture.subscriber import FrameSubscriber
    from pnp_vision.client import VisionClient
    from pnp_vision.logs import setup_logging
    from pnp_vision.stack.launch import DEMO_CAMERAS, model_for_demo, service_stack

    settings = load_settings()
    setup_logging("WARNING")
    started = time.monotonic()
    model_dir = model_dir or model_for_demo(settings)
    cameras_dir = cameras_dir or DEMO_CAMERAS
    labels = load_labels(cameras_dir)
    print(f"model: {model_dir}", file=out)
    print(f"starting capture ({cameras_dir}) and worker ...", file=out, flush=True)
    rows: list[dict[str, Any]] = []
    failures: list[str] = []

    def progress(text: str) -> None:
        print(f"  {text} ({time.monotonic() - started:.1f} s)", file=out, flush=True)

    with service_stack(
        model_dir=model_dir, cameras=(CAMERA,), cameras_dir=cameras_dir, progress=progress
    ) as stack:
        info = stack.status.model.info
        print(
            f"ready in {time.monotonic() - started:.1f} s: model {info.get('model_type', '?')} "
            f"on {info.get('device', '?')}, requests {stack.requests_endpoint}",
            file=out,
        )
        print(_row({name: name for name, _ in _COLUMNS}), file=out)
        with (
            VisionClient(stack.requests_endpoint, timeout=30.0, retries=1) as client,
            FrameSubscriber(stack.frames_endpoint, cameras=[CAMERA]) as frames,
        ):
            templates = client.templates()
            for _ in range(rounds):
                for template in templates:
                    for row in _ask(client, frames, template, labels, failures, out):
                        rows.append(row)
                        print(_row(row), file=out, flush=True)
        codes = stack.stop()
    for name, code in codes.items():
        if code != 0:
            failures.append(f"{name} exited with {code}")
    _summary(rows, codes, time.monotonic() - started, failures, out)
    return rows, failures


def _summary(
    rows: list[dict[str, Any]],
    codes: dict[str, int],
    seconds: float,
    failures: list[str],
    out: TextIO,
) -> None:
    answered = [r for r in rows if r.get("error") is None]
    print(
        f"{len(answered)}/{len(rows)} questions answered on live frames in {seconds:.1f} s; "
        f"capture and worker stopped (exit codes {codes['capture']}, {codes['worker']})",
        file=out,
    )
    judged = [r for r in answered if r.get("truth") not in (None, "-")]
    learned = [r for r in judged if r.get("trained") != "NO"]
    if learned:
        right = sum(r["answer"] == r["truth"] for r in learned)
        print(f"answers equal to the recording's labels: {right}/{len(learned)}", file=out)
    untrained = sorted({r["template"] for r in answered if r.get("trained") == "NO"})
    if untrained:
        print(
            f"trained NO: the model folder did not learn {', '.join(untrained)}; those answers"
            " are never confident and are not scored",
            file=out,
        )
    unfamiliar = sorted({r["template"] for r in answered if r.get("familiar") == "NO"})
    if unfamiliar:
        print(
            f"familiar NO: {', '.join(unfamiliar)} saw a view unlike its training views;"
            " those answers are never confident",
            file=out,
        )
    for failure in failures:
        print(f"FAILED: {failure}", file=out)


def _labelled_frame(frames: Any, template: str, labels: dict[int, list[LabelledQuestion]]) -> Any:
    """The next live frame whose recording seq has questions for `template` (None if none will)."""
    if not any(q.template == template for qs in labels.values() for q in qs):
        return None
    end = time.monotonic() + 15.0
    while time.monotonic() < end:
        frame = frames.latest(CAMERA)
        source = None if frame is None else frame.header.source_seq
        if source is not None and any(q.template == template for q in labels.get(source, [])):
            return frame
        time.sleep(0.01)  # polling the subscriber's ring, bounded by the deadline above
    raise NoFrame(f"no live frame labelled for {template} within 15 s")


def _ask(
    client: Any,
    frames: Any,
    template: dict[str, Any],
    labels: dict[int, list[LabelledQuestion]],
    failures: list[str],
    out: TextIO,
) -> list[dict[str, Any]]:
    name = template["name"]
    try:
        frame = _labelled_frame(frames, name, labels)
        if frame is None:  # no label for it: any fresh frame, example parameters
            params = example_params(template)
            if params is None:
                print(
                    f"skipped {name}: no labelled frame and no example value for its"
                    f" parameters (try `pnp-vision ask {CAMERA} {name} --param ...`)",
                    file=out,
                )
                return []
            asked = [LabelledQuestion(template=name, params=params, answer="-")]
            result = client.inspect(CAMERA, name, asked[0].params, frame="fresh", deadline=20.0)
        else:
            asked = [q for q in labels[frame.header.source_seq] if q.template == name]
            result = client.inspect_many(
                CAMERA,
                [(q.template, q.params) for q in asked],
                frame="seq",
                seq=frame.header.seq,
                deadline=20.0,
            )
    except PnpVisionError as exc:
        failures.append(f"{name}: [{exc.code.value}] {exc}")
        return [{"camera": CAMERA, "template": name, "answer": "ERROR", "error": str(exc)}]
    rows = []
    used = result.frame
    for label, r in zip(asked, result.results, strict=True):
        rows.append(
            {
                "camera": CAMERA,
                "seq": used.seq if used else None,
                "age ms": f"{used.age_ms:.0f}" if used and used.age_ms is not None else "-",
                "template": name,
                "params": ",".join(f"{k}={v}" for k, v in r.params.items()) or "-",
                "answer": r.answer,
                "prob": f"{r.probabilities[r.answer]:.2f}",
                "conf": "yes" if r.confident else "no",
                "trained": {True: "yes", False: "NO", None: "-"}[r.trained],
                "familiar": {True: "yes", False: "NO", None: "-"}[r.familiar],
                "truth": label.answer,
                "rtt ms": f"{result.round_trip_ms:.1f}",
                "model ms": f"{result.timings.inference_ms:.1f}",
                "error": None,
            }
        )
    return rows


def by_template(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by template (for tests and summaries)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["template"]].append(row)
    return dict(grouped)
