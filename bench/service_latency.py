"""What the service adds on top of the engine, and how it scales with concurrent controllers.

Starts the real thing (`pnp-vision capture` on the bundled recording, `pnp-vision worker` on the
tiny model, as subprocesses on ipc:// endpoints) and measures through `VisionClient`:

  1. round trip of one question, sequentially, on the camera's latest frame and on an inline
     PNG: p50/p99 of the round trip, of the engine's own time (`inference_ms`, measured around
     `Inspector.inspect` in the worker), and of their difference, the service overhead (sockets,
     JSON, frame choice, queue hand-offs, thread wake-ups);
  2. the peer, in the same run and in alternating blocks with (1): the same question on a live
     frame through an `Inspector` in this process, no service at all;
  3. throughput with 1, 4 and 16 concurrent clients (one thread and one socket each), with a
     monitor asking `status` meanwhile (its round trip shows status never queues behind
     inferences).

    .venv/bin/python bench/service_latency.py [--requests 200] [--seconds 5]

Prints a table and writes bench/results/service_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CAMERA = "demo"
TEMPLATE = "nozzle_alignment"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(_pct(values, 50), 3),
        "p99": round(_pct(values, 99), 3),
        "mean": round(statistics.fmean(values), 3),
    }


def sequential(
    endpoint: str, peer: Any, frame_png: bytes, requests: int, block: int = 25
) -> dict[str, Any]:
    """Service round trips (camera frame, inline PNG) and in-process engine calls, in alternating
    blocks so all three see the same background load."""
    from pnp_vision.client import VisionClient

    paths = {
        "camera": lambda c: c.inspect(CAMERA, TEMPLATE),
        "image": lambda c: c.inspect(None, TEMPLATE, image=frame_png),
    }
    seen: dict[str, dict[str, list[float]]] = {
        name: {"rtt": [], "engine": [], "worker": [], "overhead": []} for name in paths
    }
    direct: list[float] = []
    with VisionClient(endpoint, timeout=30.0, retries=0) as client:
        for _ in range(10):  # warm every path before measuring
            for ask in paths.values():
                ask(client)
            peer()
        while len(direct) < requests:
            n = min(block, requests - len(direct))
            for name, ask in paths.items():
                for _ in range(n):
                    r = ask(client)
                    seen[name]["rtt"].append(r.round_trip_ms)
                    seen[name]["engine"].append(r.timings.inference_ms)
                    seen[name]["worker"].append(r.timings.total_ms)
                    seen[name]["overhead"].append(r.round_trip_ms - r.timings.inference_ms)
            for _ in range(n):
                t0 = time.perf_counter()
                peer()
                direct.append((time.perf_counter() - t0) * 1000)
    out: dict[str, Any] = {"requests": requests, "in_process_call_ms": _summary(direct)}
    for name, v in seen.items():
        out[name] = {
            "round_trip_ms": _summary(v["rtt"]),
            "engine_ms": _summary(v["engine"]),
            "worker_total_ms": _summary(v["worker"]),
            "service_overhead_ms": _summary(v["overhead"]),
        }
    return out


def throughput(endpoint: str, clients: int, seconds: float) -> dict[str, Any]:
    from pnp_vision.client import VisionClient
    from pnp_vision.errors import Busy

    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"ok": 0, "busy": 0, "error": 0}
    stop_at: list[float] = []

    def run() -> None:
        with VisionClient(endpoint, timeout=30.0, retries=0) as client:
            start.wait()
            while time.monotonic() < stop_at[0]:
                try:
                    r = client.inspect(CAMERA, TEMPLATE)
                except Busy:
                    with lock:
                        counts["busy"] += 1
                    continue
                except Exception:
                    with lock:
                        counts["error"] += 1
                    continue
                with lock:
                    counts["ok"] += 1
                    latencies.append(r.round_trip_ms)

    status_ms: list[float] = []

    def watch() -> None:
        """A monitor asking `status` meanwhile: answered by the I/O thread, never queued."""
        from pnp_vision.protocol.requests import StatusRequest

        with VisionClient(endpoint, timeout=30.0, retries=0) as client:
            start.wait()
            while time.monotonic() < stop_at[0]:
                _, ms = client.request(StatusRequest(id=f"watch-{len(status_ms)}"))
                status_ms.append(ms)
                time.sleep(0.02)  # a monitor's polling rate, not a measurement

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    threads.append(threading.Thread(target=watch, daemon=True))
    start = threading.Barrier(len(threads) + 1)
    for t in threads:
        t.start()
    stop_at.append(time.monotonic() + seconds)
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.monotonic() - t0
    return {
        "clients": clients,
        "seconds": round(elapsed, 3),
        "answers_per_s": round(counts["ok"] / elapsed, 2),
        **counts,
        "round_trip_ms": _summary(latencies) if latencies else None,
        "status_round_trip_ms": _summary(status_ms) if status_ms else None,
    }


def in_process_peer(model_dir: Path, frame_png: bytes) -> Any:
    """The engine alone: a callable asking the same question through an in-process Inspector."""
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    import cv2
    import numpy as np

    from pnp_vision.inspect import Inspector, Question, TemplateSet

    image = cv2.imdecode(np.frombuffer(frame_png, np.uint8), cv2.IMREAD_COLOR)
    inspector = Inspector(model_dir, TemplateSet.load(ROOT / "prompts"))
    inspector.warm_up()
    question = [Question(template=TEMPLATE)]
    return lambda: inspector.inspect(image, question)


def _grab_frame_png(endpoint: str) -> bytes:
    """One live frame from the capture daemon, PNG-encoded, for the in-process peer."""
    import cv2

    from pnp_vision.capture.subscriber import FrameSubscriber

    with FrameSubscriber(endpoint, cameras=[CAMERA]) as sub:
        end = time.monotonic() + 10
        while (frame := sub.latest(CAMERA)) is None:
            if time.monotonic() > end:
                raise RuntimeError("no frame from the capture daemon within 10 s")
            time.sleep(0.02)
    ok, buf = cv2.imencode(".png", frame.image)
    assert ok
    return buf.tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="sequential round trips")
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency level")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels")
    parser.add_argument("--queue-size", type=int, default=16)
    parser.add_argument("--cameras-dir", type=Path, help="default: cameras/demo.toml")
    parser.add_argument("--model", type=Path, help="model folder (default: the tiny model)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from pnp_vision.devtools.tiny_models import ensure_tiny_model
    from pnp_vision.stack.launch import DEMO_CAMERAS, service_stack

    model_dir = args.model or ensure_tiny_model()
    levels = [int(x) for x in args.clients.split(",")]
    with service_stack(
        model_dir=model_dir,
        queue_size=args.queue_size,
        cameras_dir=args.cameras_dir or DEMO_CAMERAS,
        worker_env={"PNP_VISION_LOG_LEVEL": "WARNING"},
    ) as stack:
        frame_png = _grab_frame_png(stack.frames_endpoint)
        peer = in_process_peer(model_dir, frame_png)  # this thread only (MLX streams)
        seq = sequential(stack.requests_endpoint, peer, frame_png, args.requests)
        conc = [throughput(stack.requests_endpoint, n, args.seconds) for n in levels]

    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "model": str(model_dir.name),
        "template": TEMPLATE,
        "transport": "ipc://",
        "sequential": seq,
        "throughput": conc,
        "overhead_ratio_p50": round(
            seq["camera"]["round_trip_ms"]["p50"] / seq["in_process_call_ms"]["p50"], 3
        ),
    }
    _print(results)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "service_latency.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path}")
    return 0


def _print(r: dict[str, Any]) -> None:
    seq = r["sequential"]
    cpus = r["machine"]["cpus"]
    print(f"service latency, model {r['model']}, {r['transport']}, {cpus} CPUs")
    print(f"\n{'one question, sequential':<44} {'p50 ms':>8} {'p99 ms':>8}")
    rows = []
    for name, label in (("camera", "camera frame (latest)"), ("image", "inline PNG image")):
        s = seq[name]
        rows += [
            (f"{label}: client round trip", s["round_trip_ms"]),
            ("  engine call in the worker", s["engine_ms"]),
            ("  service overhead (round trip - engine)", s["service_overhead_ms"]),
        ]
    rows.append(("peer: Inspector.inspect in-process", seq["in_process_call_ms"]))
    for name, s in rows:
        print(f"{name:<44} {s['p50']:>8.2f} {s['p99']:>8.2f}")
    print(f"round trip (camera) / in-process call, p50: {r['overhead_ratio_p50']:.2f}x")
    print(
        f"\n{'clients':>7} {'answers/s':>10} {'ok':>6} {'busy':>5} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'status p50':>11} {'status p99':>11}"
    )
    nan = {"p50": float("nan"), "p99": float("nan")}
    for t in r["throughput"]:
        lat = t["round_trip_ms"] or nan
        st = t["status_round_trip_ms"] or nan
        print(
            f"{t['clients']:>7} {t['answers_per_s']:>10.1f} {t['ok']:>6} {t['busy']:>5} "
            f"{lat['p50']:>8.2f} {lat['p99']:>8.2f} {st['p50']:>11.2f} {st['p99']:>11.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
