"""Reload latency under a steady request stream, and the cost of switching LoRA adapters.

Part 1 (real processes): capture + worker on tiny models, one controller thread asking without
pause, and `reload`s alternating between the tiny Qwen2.5-VL and mllama folders named in a
config folder. Reports each reload's round trip and load + self-check time, the stream's failed
requests (goal: 0) and its latency while no reload runs vs while one runs.
Part 2 (in process, CPU): the tiny Qwen base with an adapter trained here (a few seconds):
`AdapterSet.activate` time per switch, and one inspection with the adapter vs the bare base.

    python bench/reload_adapters.py [--reloads 4] [--out bench/results/reload_adapters.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.tiny_models import ensure_tiny_model
from pnp_vision.errors import PnpVisionError
from pnp_vision.stack.launch import service_stack

DEMO = PROJECT_ROOT / "recordings" / "demo"


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def bench_reload(reloads: int) -> dict[str, Any]:
    models = [ensure_tiny_model("qwen2_5_vl"), ensure_tiny_model("mllama")]
    run = Path(tempfile.mkdtemp(prefix="pnpv-bench-", dir="/tmp"))
    config = run / "config"
    config.mkdir()

    def configure(model: Path) -> None:
        (config / "service.toml").write_text(f'model_dir = "{model}"\n')

    configure(models[0])
    samples: list[tuple[float, float, int]] = []  # (sent, ms, generation)
    failures: list[str] = []
    stop = threading.Event()
    counted = threading.Condition()

    with service_stack(
        model_dir=None, worker_env={"PNP_VISION_CONFIG_DIR": str(config)}, run_dir=run
    ) as stack:

        def stream() -> None:
            with VisionClient(stack.requests_endpoint, timeout=30.0, retries=0) as client:
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        got = client.inspect("demo", "nozzle_alignment", deadline=20.0)
                    except PnpVisionError as exc:
                        failures.append(f"{exc.code}: {exc}")
                        continue
                    generation = got.model.generation if got.model else 0
                    with counted:
                        samples.append((sent, got.round_trip_ms, generation))
                        counted.notify_all()

        thread = threading.Thread(target=stream, daemon=True)
        thread.start()
        windows: list[tuple[float, float]] = []
        rows = []
        with VisionClient(stack.requests_endpoint, timeout=300.0, retries=0) as client:
            client.inspect("demo", "nozzle_alignment")
            for i in range(reloads):
                with counted:  # some answers between reloads: the stream's latency at rest
                    target = len(samples) + 20
                    counted.wait_for(lambda t=target: len(samples) >= t or bool(failures), 60)
                configure(models[(i + 1) % 2])
                start = time.monotonic()
                result = client.reload()
                end = time.monotonic()
                windows.append((start, end))
                rows.append(
                    {
                        "to": result.model.path.rsplit("/", 1)[-1],
                        "generation": result.model.generation,
                        "round_trip_s": round(end - start, 3),
                        "load_and_check_s": result.load_s,
                        "templates_checked": len(result.checked),
                    }
                )
            stop.set()
            thread.join(60)
    shutil.rmtree(run, ignore_errors=True)
    during = [ms for sent, ms, _ in samples if any(a <= sent <= b for a, b in windows)]
    outside = [ms for sent, ms, _ in samples if not any(a <= sent <= b for a, b in windows)]
    generations = [g for *_, g in samples]
    return {
        "reloads": rows,
        "requests": len(samples) + len(failures),
        "failed_requests": len(failures),
        "failures": failures[:5],
        "generations_monotonic": generations == sorted(generations),
        "stream_ms_outside_reload": {"p50": _pct(outside, 0.5), "p95": _pct(outside, 0.95)},
        "stream_ms_during_reload": {
            "n": len(during),
            "p50": _pct(during, 0.5),
            "p95": _pct(during, 0.95),
            "max": _pct(during, 1.0),
        },
    }


def bench_adapters(switches: int, inspections: int) -> dict[str, Any]:
    from pnp_vision.inspect import Inspector, Question, TemplateSet
    from pnp_vision.inspect import adapters as inspect_adapters
    from pnp_vision.teach import lora

    model_dir = ensure_tiny_model("qwen2_5_vl")
    inspector = Inspector(model_dir, TemplateSet.load(PROJECT_ROOT / "prompts"))
    frames = sorted(DEMO.glob("*nozzle_tip.png"))[:3]
    examples = [lora.Example(f, "part_on_nozzle", {}, "YES") for f in frames]
    out = Path(tempfile.mkdtemp(prefix="pnpv-adapter-", dir="/tmp")) / "adapter"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        lora.train_lora(
            model_dir, examples, out, steps=20, lr=3e-3, holdout=0.0, inspector=inspector
        )
    started = time.perf_counter()
    adapters = inspect_adapters.AdapterSet(inspector.model, model_dir, {"a": out})
    set_load_ms = (time.perf_counter() - started) * 1000
    image = lora._image(frames[0])
    question = [Question(template="part_on_nozzle")]

    def inspect_ms(name: str | None) -> float:
        adapters.activate(name)
        times = []
        for _ in range(inspections):
            t0 = time.perf_counter()
            inspector.inspect(image, question)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    base_ms = inspect_ms(None)
    adapter_ms = inspect_ms("a")
    switch = []
    for i in range(switches):
        t0 = time.perf_counter()
        adapters.activate("a" if i % 2 else None)
        switch.append((time.perf_counter() - t0) * 1e6)
    # A request that alternates: switch + inspect, as the worker does between question groups.
    alternating = []
    for i in range(inspections):
        t0 = time.perf_counter()
        adapters.activate("a" if i % 2 else None)
        inspector.inspect(image, question)
        alternating.append((time.perf_counter() - t0) * 1000)
    adapters.activate(None)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {
        "model": model_dir.name,
        "adapter_set_load_ms": round(set_load_ms, 2),
        "activate_us": {"p50": _pct(switch, 0.5), "p95": _pct(switch, 0.95)},
        "inspect_ms_base_p50": round(base_ms, 2),
        "inspect_ms_adapter_p50": round(adapter_ms, 2),
        "adapter_overhead_pct": round((adapter_ms / base_ms - 1) * 100, 1),
        "inspect_ms_switching_every_call_p50": round(statistics.median(alternating), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=4)
    parser.add_argument("--switches", type=int, default=200)
    parser.add_argument("--inspections", type=int, default=20)
    parser.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "reload_adapters.json"
    )
    args = parser.parse_args()
    report = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "reload": bench_reload(args.reloads),
        "adapters": bench_adapters(args.switches, args.inspections),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
