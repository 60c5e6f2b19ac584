"""`pnp-vision worker | ask | status | demo`. Heavy imports (mlx, cv2) stay inside the functions."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pnp_vision.errors import PnpVisionError

if TYPE_CHECKING:
    from pnp_vision.client import VisionClient


def register(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser(
        "worker",
        help="run the resident inspection worker (model + frames + controller requests)",
        description="Load the model once, subscribe to frames, serve requests until "
        "SIGINT/SIGTERM (which finish the inference in flight and answer the rest shutting_down).",
    )
    worker.add_argument("--endpoint", help="ROUTER endpoint to bind (default: requests_endpoint)")
    worker.add_argument("--frames-endpoint", help="capture daemon PUB endpoint to subscribe to")
    worker.add_argument("--model", type=Path, help="model folder (default: model_dir)")
    worker.add_argument("--prompts", type=Path, help="template folder (default: prompts_dir)")
    worker.add_argument("--queue-size", type=int, help="requests waiting for the model")
    worker.set_defaults(func=_worker)

    ask = sub.add_parser(
        "ask",
        help="ask the worker one templated question about a camera's frame (or an image)",
        description="Exit status: 0 answered, 2 error reply or no reply.",
    )
    ask.add_argument("camera", help="camera name (with --image: only a label)")
    ask.add_argument("template", help="template name (see `pnp-vision templates`)")
    ask.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter (repeatable)",
    )
    ask.add_argument("--image", type=Path, help="inspect this PNG/JPEG instead of a camera frame")
    ask.add_argument("--frame", choices=("latest", "fresh", "seq"), default="latest")
    ask.add_argument("--seq", type=int, help="with --frame seq: the frame number")
    ask.add_argument("--max-age", type=float, metavar="S", help="with --frame latest")
    ask.add_argument("--deadline", type=float, metavar="S", help="answer within S seconds")
    _client_options(ask)
    ask.add_argument("--json", action="store_true", help="print the reply as JSON")
    ask.add_argument(
        "--save-crop", type=Path, metavar="FILE", help="write the image the model saw (PNG)"
    )
    ask.set_defaults(func=_json_errors(_ask))

    status = sub.add_parser("status", help="the worker's model, queue, cameras and counters")
    _client_options(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=_json_errors(_status))

    reload = sub.add_parser(
        "reload",
        help="reload the worker's model, adapters and templates without downtime",
        description="Like SIGHUP: the worker re-reads its settings, loads the model folder, "
        "adapters and prompts/ beside the running set, self-checks them (one inspection per "
        "template) and only then swaps; the old set answers meanwhile and stays if the new "
        "one fails. Exit status: 0 swapped, 2 failed (the old set still answers).",
    )
    _client_options(reload)
    reload.set_defaults(func=_json_errors(_reload))
    reload.add_argument("--json", action="store_true", help="print the result as JSON")

    demo = sub.add_parser(
        "demo",
        help="the main job: capture + worker on the bundled recording, every template asked",
        description="Starts `pnp-vision capture` on cameras/demo.toml and `pnp-vision worker` "
        "(model_dir: the bundled trained model by default) as real processes, asks every template "
        "on live frames, prints a table, stops both. Exit 0 only if everything was answered.",
    )
    demo.add_argument("--model", type=Path, help="model folder (default: model_dir)")
    demo.add_argument(
        "--cameras-dir",
        type=Path,
        help="camera definitions with a camera named 'demo' (default: cameras/demo.toml)",
    )
    demo.add_argument(
        "--rounds", type=int, default=1, help="ask every template this many times (fresh frames)"
    )
    demo.add_argument("--json", action="store_true", help="also print the rows as JSON lines")
    demo.set_defaults(func=_demo)


def _json_errors(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """With --json, an error is JSON on stdout (not a line on stderr), shaped like the wire's
    error reply (`{"ok": false, "error": {"code", "message"}}`), with the same non-zero exit: a
    script reads one format whatever happened."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except PnpVisionError as exc:
            if not args.json:
                raise
            error = {"code": exc.code.value, "message": str(exc)}
            print(json.dumps({"ok": False, "error": error}))
            return exc.exit_code

    return run


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", help="worker endpoint (default: requests_endpoint)")
    parser.add_argument("--timeout", type=float, help="seconds per try (default from settings)")
    parser.add_argument("--retries", type=int, help="resends after a timeout")


def _worker(args: argparse.Namespace) -> int:
    from pnp_vision.config import load_settings, log_folders
    from pnp_vision.logs import setup_logging
    from pnp_vision.service.worker import Worker

    options = {
        "requests_endpoint": args.endpoint,
        "frames_endpoint": args.frames_endpoint,
        "model_dir": args.model,
        "prompts_dir": args.prompts,
        "queue_size": args.queue_size,
    }
    settings = load_settings(**options)
    setup_logging(settings.log_level)
    log_folders(settings, "prompts", "model")
    settings.require_model()  # before binding: a missing folder is model_not_found, at once
    # A reload (request or SIGHUP) reads config/*.toml and the environment again; options given
    # here stay as given (a --model folder stays; name it in config to change it on reload).
    Worker(settings, reread=lambda: load_settings(**options)).serve()
    # Every socket is closed and the last replies are flushed. Python's own teardown of the
    # mlx / mlx-vlm / transformers modules takes 3-4 s here and does nothing we need, and a fast
    # exit is what lets a supervisor restart the worker (or a SIGTERM drain end) promptly.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _client(args: argparse.Namespace) -> VisionClient:
    from pnp_vision.client import VisionClient

    return VisionClient(args.endpoint, args.timeout, args.retries)


def _ask(args: argparse.Namespace) -> int:
    from pnp_vision.inspect.imageprep import read_image_file
    from pnp_vision.inspect.templates import parse_params

    image = None if args.image is None else read_image_file(args.image)  # named if not one
    with _client(args) as client:
        result = client.inspect(
            args.camera,
            args.template,
            parse_params(args.param),
            image=image,
            frame=args.frame,
            seq=args.seq,
            max_age=args.max_age,
            deadline=args.deadline,
        )
        if args.save_crop is not None:  # asked at once: the worker keeps history_size answers
            args.save_crop.write_bytes(client.crop(result.id))
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    r = result.result
    frame = result.frame
    where = (
        f"image {args.image}"
        if frame is None or frame.source == "image"
        else f"camera {frame.camera} seq {frame.seq} ({frame.age_ms:.0f} ms old)"
    )
    flag = "" if r.confident else "  (not confident)"
    if r.trained is False:
        flag = "  (not confident: the model did not learn this template)"
    elif r.familiar is False:
        flag = (
            f"  (not confident: unfamiliar view, familiarity {r.familiarity:.2f} > 1:"
            " unlike what the model was trained on)"
        )
    print(f"{r.template}: {r.answer}{flag}")
    print(f"  question: {r.question}")
    print("  probabilities: " + ", ".join(f"{a}={p:.3f}" for a, p in r.probabilities.items()))
    print(f"  frame: {where}")
    t = result.timings
    print(
        f"  timings: round trip {result.round_trip_ms:.1f} ms, model {t.inference_ms:.1f} ms, "
        f"queue {t.queue_ms:.1f} ms"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.status()
    if args.json:
        print(status.model_dump_json(indent=2))
        return 0
    m, q = status.model, status.queue
    print(f"worker up {status.uptime_s:.0f} s, {'ready' if status.ready else 'not ready'}")
    print(f"  model: {m.state} {m.path}" + (f" ({m.error})" if m.error else ""))
    if m.identity is not None:
        print(f"    generation: {m.identity.generation}, fingerprint {m.identity.fingerprint}")
    for route, folder in m.adapters.items():
        print(f"    adapter {route}: {folder}")
    if status.reload is not None:
        r = status.reload
        took = "" if r.load_s is None else f" in {r.load_s:.1f} s"
        print(f"  last reload: {r.state} (generation {r.generation}){took}")
        if r.error:
            print(f"    error: {r.error}")
    for key in ("model_type", "device", "dtype"):
        if key in m.info:
            print(f"    {key}: {m.info[key]}")
    if status.folders is not None:
        f = status.folders
        print(f"  home: {f.home or '-'} (found by: {f.found_by}), config: {f.config or '-'}")
        print(f"  templates: {', '.join(f.prompts)}")
    print(
        f"  queue: {q.depth}/{q.capacity} queued, {q.waiting_for_frame} waiting for a frame, "
        f"{q.in_flight} in flight"
    )
    for name, view in status.cameras.items():
        age = "-" if view.frame_age_ms is None else f"{view.frame_age_ms:.0f} ms"
        fps = "-" if view.fps is None else f"{view.fps:.1f}"
        print(f"  camera {name}: {view.state}, fps {fps}, last seq {view.last_seq}, age {age}")
    print("  counters: " + ", ".join(f"{k}={v}" for k, v in status.counters.items()))
    if status.errors:
        print("  errors: " + ", ".join(f"{k}={v}" for k, v in status.errors.items()))
    return 0


def _reload(args: argparse.Namespace) -> int:
    from pnp_vision.client import VisionClient

    timeout = args.timeout if args.timeout is not None else RELOAD_TIMEOUT_S
    retries = args.retries if args.retries is not None else 0
    with VisionClient(args.endpoint, timeout, retries) as client:
        result = client.reload()
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    m = result.model
    print(
        f"reloaded: generation {m.generation}, {m.path} (fingerprint {m.fingerprint}) "
        f"in {result.load_s:.1f} s"
    )
    print(f"  templates: {', '.join(result.templates)}")
    print(f"  self-checked: {', '.join(result.checked) or 'none'}")
    for route, folder in result.adapters.items():
        print(f"  adapter {route}: {folder}")
    return 0


RELOAD_TIMEOUT_S = 600.0  # a large model loads, warms up and self-checks before the reply


def _demo(args: argparse.Namespace) -> int:
    from pnp_vision.stack.demo import run_demo

    rows, failures = run_demo(
        model_dir=args.model, rounds=args.rounds, cameras_dir=args.cameras_dir
    )
    if args.json:
        for row in rows:
            print(json.dumps(row), file=sys.stdout)
    return 1 if failures else 0
