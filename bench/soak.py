"""Soak: two cameras captured at full rate plus a steady stream of requests, for a bounded time.

Starts `pnp-vision capture` (two replay cameras at a fixed rate) and `pnp-vision worker` (tiny
model by default) as real processes on ipc:// endpoints, then sends requests at a steady rate
from two controller threads, alternating cameras, templates and frame choices. Reports requests
sent, answered, errors by code, lost (no reply after every retry: must be 0), p50/p99 latency per
time window, and the RSS of each process at the start and the end (growth must stay under
--rss-bound-mb).

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 4] [--fps 30] [--window-s 60]

Prints a table and writes bench/results/soak.json; exits 1 if anything was lost or RSS grew
beyond the bound.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CAMERAS = ("cam_a", "cam_b")
QUESTIONS = (
    ("nozzle_alignment", {}),
    ("part_on_nozzle", {}),
    ("part_marking", {"marking": "STM32F1"}),
    ("polarity_mark", {"corner": "top_left"}),
    ("tombstone", {}),
    ("feeder_pocket_empty", {}),
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def write_cameras(folder: Path, fps: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    recording = ROOT / "recordings" / "demo"
    text = "".join(
        f'[[camera]]\nname = "{name}"\nsource = "{recording}"\nkind = "recording"\n'
        f'loop = true\npacing = "fixed"\nfps = {fps}\nencoding = "raw-bgr8"\n\n'
        for name in CAMERAS
    )
    (folder / "soak.toml").write_text(text)
    return folder


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def controller(
    endpoint: str, rate: float, end: float, offset: int, log: list[dict[str, Any]]
) -> None:
    """Send at a fixed schedule (not back-to-back) so the load stays steady whatever the latency."""
    from pnp_vision.client import ServiceTimeout, VisionClient
    from pnp_vision.errors import PnpVisionError

    interval = 1.0 / rate
    i = offset
    next_at = time.monotonic()
    with VisionClient(endpoint, timeout=10.0, retries=2) as client:
        while time.monotonic() < end:
            camera = CAMERAS[i % len(CAMERAS)]
            template, params = QUESTIONS[i % len(QUESTIONS)]
            frame = "fresh" if i % 3 == 0 else "latest"
            sent = time.monotonic()
            row: dict[str, Any] = {"t": sent, "camera": camera, "template": template}
            try:
                done = client.inspect(camera, template, params, frame=frame, deadline=5.0)
                row.update(outcome="ok", ms=done.round_trip_ms)
            except ServiceTimeout:
                row.update(outcome="lost")
            except PnpVisionError as exc:
                row.update(outcome=exc.code.value, ms=(time.monotonic() - sent) * 1000)
            log.append(row)
            i += 2
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))  # pacing of a load generator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=4.0, help="requests per second in all")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second per camera")
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--rss-bound-mb", type=float, default=64.0)
    parser.add_argument("--model", type=Path, help="model folder (default: the tiny model)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = parser.parse_args()

    from pnp_vision.devtools.tiny_models import ensure_tiny_model
    from pnp_vision.stack.launch import (
        ipc_endpoint,
        start_capture,
        start_worker,
        wait_until_ready,
    )

    model = args.model or ensure_tiny_model()
    run_dir = Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))
    frames, requests = ipc_endpoint(run_dir, "frames"), ipc_endpoint(run_dir, "req")
    capture = start_capture(
        frames,
        log_dir=run_dir,
        cameras=CAMERAS,
        cameras_dir=write_cameras(run_dir / "cams", args.fps),
    )
    worker = start_worker(requests, frames, model_dir=model, log_dir=run_dir)
    log: list[dict[str, Any]] = []
    rss: dict[str, dict[str, float]] = {}
    try:
        wait_until_ready(worker, 120, cameras=CAMERAS, watch=[capture])
        procs = {"worker": worker, "capture": capture}
        rss = {name: {"start": rss_mb(p.pid)} for name, p in procs.items()}
        start = time.monotonic()
        end = start + args.minutes * 60
        threads = [
            threading.Thread(target=controller, args=(requests, args.rate / 2, end, k, log))
            for k in (0, 1)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.minutes * 60 + 120)
        for name, p in procs.items():
            rss[name]["end"] = rss_mb(p.pid)
        status = capture_status = None
        from pnp_vision.client import VisionClient

        with VisionClient(requests, timeout=5, retries=1) as client:
            status = client.status()
            capture_status = {k: v.model_dump() for k, v in status.cameras.items()}
    finally:
        codes = {"worker": worker.stop(), "capture": capture.stop()}

    outcomes = Counter(row["outcome"] for row in log)
    windows = []
    n_windows = max(1, int(args.minutes * 60 // args.window_s))
    for w in range(n_windows):
        lo, hi = start + w * args.window_s, start + (w + 1) * args.window_s
        ms = [r["ms"] for r in log if lo <= r["t"] < hi and r["outcome"] == "ok"]
        windows.append(
            {
                "window": w,
                "from_s": w * args.window_s,
                "answered": len(ms),
                "p50_ms": pct(ms, 0.5),
                "p99_ms": pct(ms, 0.99),
            }
        )
    growth = {name: v["end"] - v["start"] for name, v in rss.items()}
    result = {
        "minutes": args.minutes,
        "rate": args.rate,
        "fps_per_camera": args.fps,
        "sent": len(log),
        "answered": outcomes.get("ok", 0),
        "errors": {k: v for k, v in outcomes.items() if k not in ("ok", "lost")},
        "lost": outcomes.get("lost", 0),
        "windows": windows,
        "rss_mb": rss,
        "rss_growth_mb": growth,
        "rss_bound_mb": args.rss_bound_mb,
        "exit_codes": codes,
        "cameras": capture_status,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    print(f"soak {args.minutes:g} min, {args.rate:g} req/s, 2 cameras at {args.fps:g} fps")
    print(
        f"sent {len(log)}  answered {result['answered']}  lost {result['lost']}  "
        f"errors {result['errors'] or '{}'}"
    )
    print(f"{'window':>8} {'from_s':>7} {'answered':>9} {'p50_ms':>8} {'p99_ms':>8}")
    for w in windows:
        print(
            f"{w['window']:>8} {w['from_s']:>7.0f} {w['answered']:>9} "
            f"{w['p50_ms']:>8.1f} {w['p99_ms']:>8.1f}"
        )
    for name, v in rss.items():
        print(
            f"rss {name:8} start {v['start']:7.1f} MB  end {v['end']:7.1f} MB  "
            f"growth {growth[name]:+6.1f} MB (bound {args.rss_bound_mb:g})"
        )
    ok = result["lost"] == 0 and all(g <= args.rss_bound_mb for g in growth.values())
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
