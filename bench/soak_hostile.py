"""Soak with a hostile client: legitimate controllers' latency with and without an attacker.

Starts `pnp-vision capture` (the demo camera) and `pnp-vision worker` (tiny model) as real
processes, then runs two phases of equal length with the same legitimate load (`--controllers`
threads, each sending `inspect` requests on the latest frame at `--rate` per second): first
alone, then beside a hostile client that sends the fuzz corpus (tests/fuzz/hostile.py: deep
nesting, surrogates, invalid UTF-8, non-finite numbers, oversize, wrong shapes, pixel bombs)
as fast as the worker answers. Reports legitimate requests lost (must be 0), p50/p99 latency of
each phase and their p99 ratio (goal: <= 1.5), hostile requests sent and how they were answered.

    .venv/bin/python bench/soak_hostile.py [--seconds 60] [--controllers 2] [--rate 4]

Prints a table and writes bench/results/soak_hostile.json; exits 1 if the goals are missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import zmq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def legit(endpoint: str, seconds: float, rate: float, out: dict[str, Any]) -> None:
    """One controller: inspect requests at a steady rate; latencies (ms) and losses."""
    from pnp_vision.client import ServiceTimeout, VisionClient
    from pnp_vision.errors import PnpVisionError

    latencies, lost, errors = [], 0, Counter()
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    with VisionClient(endpoint, timeout=5.0, retries=3) as client:
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                client.inspect("demo", "tombstone", max_age=5.0)
                latencies.append((time.monotonic() - started) * 1000)
            except ServiceTimeout:
                lost += 1
            except PnpVisionError as exc:
                errors[str(exc.code)] += 1
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))  # steady load, not a test wait
    out.setdefault("latencies", []).extend(latencies)
    out["lost"] = out.get("lost", 0) + lost
    out.setdefault("errors", Counter()).update(errors)


def hostile(endpoint: str, stop: Any, out: Any) -> None:
    """Send the hostile corpus in a loop, each waiting for its reply (its own process: the
    attacker must not slow the legitimate controllers through this process's GIL)."""
    from tests.fuzz.hostile import hostile_requests

    corpus = [h for h in hostile_requests(16 << 20, 64 << 20) if h.reply]
    codes: Counter[str] = Counter()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    sent = unanswered = 0
    try:
        while not stop.is_set():
            for item in corpus:
                if stop.is_set():
                    break
                sock.send_multipart(item.frames)
                sent += 1
                if sock.poll(10_000):
                    reply = json.loads(sock.recv_multipart()[-1])
                    codes[reply["error"]["code"] if not reply["ok"] else "ok"] += 1
                else:
                    unanswered += 1
    finally:
        sock.close(linger=0)
        ctx.term()
    out.update(sent=sent, unanswered=unanswered, codes=dict(codes))  # a Manager dict


def phase(endpoint: str, seconds: float, controllers: int, rate: float, attack: bool) -> dict:
    import multiprocessing as mp

    legit_out: dict[str, Any] = {}
    manager = mp.Manager()
    hostile_out = manager.dict()
    stop = manager.Event()
    threads = [
        threading.Thread(target=legit, args=(endpoint, seconds, rate, legit_out))
        for _ in range(controllers)
    ]
    attacker = mp.get_context("spawn").Process(target=hostile, args=(endpoint, stop, hostile_out))
    if attack:
        attacker.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    if attack:
        attacker.join()
    lat = sorted(legit_out.get("latencies", []))
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    return {
        "legit_answered": len(lat),
        "legit_lost": legit_out.get("lost", 0),
        "legit_errors": dict(legit_out.get("errors", {})),
        "p50_ms": round(statistics.median(lat), 2) if lat else None,
        "p99_ms": round(p99, 2),
        "hostile": dict(hostile_out),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--controllers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=4.0, help="requests/s per controller")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "soak_hostile.json"
    )
    args = parser.parse_args()

    from pnp_vision.devtools.tiny_models import ensure_tiny_model
    from pnp_vision.stack.launch import service_stack

    with (
        tempfile.TemporaryDirectory(prefix="pnps-", dir="/tmp") as run_dir,
        service_stack(model_dir=ensure_tiny_model(), run_dir=Path(run_dir)) as stack,
    ):
        endpoint = stack.requests_endpoint
        calm = phase(endpoint, args.seconds, args.controllers, args.rate, attack=False)
        attacked = phase(endpoint, args.seconds, args.controllers, args.rate, attack=True)
        alive = {"worker": stack.worker.alive(), "capture": stack.capture.alive()}
    ratio = attacked["p99_ms"] / calm["p99_ms"] if calm["p99_ms"] else float("nan")
    hostile_answers = attacked["hostile"].get("codes", {})
    result = {
        "seconds_per_phase": args.seconds,
        "controllers": args.controllers,
        "rate_per_controller": args.rate,
        "without_hostile": calm,
        "with_hostile": attacked,
        "p99_ratio": round(ratio, 3),
        "alive_after": alive,
        "goals": {
            "no_legit_lost": calm["legit_lost"] == 0 and attacked["legit_lost"] == 0,
            "p99_ratio_le_1_5": ratio <= 1.5,
            "hostile_all_bad_request": set(hostile_answers) <= {"bad_request"},
            "no_deaths": all(alive.values()),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'phase':<16}{'answered':>9}{'lost':>6}{'p50 ms':>9}{'p99 ms':>9}{'hostile sent':>14}")
    for name, r in (("without hostile", calm), ("with hostile", attacked)):
        sent = r["hostile"].get("sent", 0)
        print(
            f"{name:<16}{r['legit_answered']:>9}{r['legit_lost']:>6}"
            f"{r['p50_ms']:>9}{r['p99_ms']:>9}{sent:>14}"
        )
    print(f"p99 ratio {ratio:.3f}; hostile answers {hostile_answers}; alive {alive}")
    print(f"wrote {args.out}")
    return 0 if all(result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
