"""Throughput with K concurrent controllers: the batching worker against today's one-at-a-time
worker (the peer), in the same run (issue 34).

Starts the real thing as subprocesses on ipc:// endpoints: a capture daemon replaying the bundled
recording as many cameras as controllers (`cam00`, `cam01`, ...: each its own replay, so every
controller has frames of its own), the batching worker (`batch_size`, `batch_wait_s` as given)
and the peer (the same worker with `batch_size` 1), both subscribed to the same frames. For each
K in --controllers, K controller threads (one `VisionClient` each) ask as fast as answers come,
controller k about its own camera `cam{k}`, one question per request (the templates in turn:
other views and questions in one batch), first for --warmup seconds (not counted: compiles of
new shapes on GPUs), then for --seconds. The peer and the batching worker take turns at each K,
--rounds times in alternating order, so both see the same machine (shared cores drift a lot).
Reported per worker and K: answers/s, p50/p99 round trip, the batch sizes the replies say they
were answered in, busy replies, errors, the worker's CPU time per answer, and the ratios to the
peer; then the batching worker as two processes behind one client (a DEALER connected to both:
`pnp_vision.pool`) at K=16 (or the largest K; --two-workers).

    .venv/bin/python bench/service_throughput.py                     # CPU, the shipped inspector
    .venv/bin/python bench/service_throughput.py --controllers 1,16 --seconds 10

On the GPU (`bench/gpu/run.sh throughput`): --shape 7b builds a 7B-shaped folder with random
bf16 weights and asks one 448x448 YES/NO template. The machine's load average is recorded
before and after each stage (other jobs on shared cores show there). Prints a table; writes
bench/results/service_throughput.json (--out, --name).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LEARNED = ("nozzle_alignment", "part_on_nozzle", "tombstone", "feeder_pocket_empty")
# Controllers take the latest frame of their camera up to this old: the bench measures the
# model and the service, not the replay's pace on a loaded machine.
MAX_AGE_S = 5.0
# The GPU stage's question: one YES/NO template, the whole frame as a 448x448 view.
BENCH_TEMPLATE = """name = "bench_check"
description = "Throughput benchmark question (issue 34)."
question = "Is the nozzle tip centred on the crosshair? Answer YES or NO."
view = [448, 448]
"""


def shaped_model(shape: str, folder: Path) -> tuple[Path, Path]:
    """A Qwen2.5-VL folder of a real size (`3b`, `7b`: `perf_common`'s shapes) with random
    bf16 weights, built once under .cache/bench-models/, and the template folder it is asked
    with (`folder`/prompts: BENCH_TEMPLATE). Speed does not depend on weight values."""
    import perf_common as pc

    from pnp_vision.devtools.tiny_models import QwenSpec, ensure_model

    prompts = folder / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    (prompts / "bench_check.toml").write_text(BENCH_TEMPLATE)
    lm, vision = pc.QWEN_SHAPES[shape], pc.VISION
    spec = QwenSpec(
        vocab_size=lm["vocab_size"],
        hidden=lm["hidden_size"],
        layers=lm["num_hidden_layers"],
        heads=lm["num_attention_heads"],
        kv_heads=lm["num_key_value_heads"],
        intermediate=lm["intermediate_size"],
        mrope_section=(16, 24, 24),
        vision_hidden=vision["hidden_size"],
        vision_depth=vision["depth"],
        vision_heads=vision["num_heads"],
        vision_intermediate=vision["intermediate_size"],
        fullatt_blocks=tuple(pc.full_attention_blocks(vision["depth"])),
        max_pixels=448 * 448,
        storage_dtype="bfloat16",
    )
    return ensure_model("qwen2_5_vl", spec, ROOT / ".cache" / "bench-models", prompts), prompts


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))], 3)


def write_cameras(folder: Path, count: int, recording: Path, fps: float) -> list[str]:
    """`count` replay cameras of `recording`, each on its own (raw frames, fixed pace)."""
    names = [f"cam{i:02d}" for i in range(count)]
    lines = []
    for name in names:
        lines += [
            "[[camera]]",
            f'name = "{name}"',
            f'source = "{recording}"',
            'kind = "recording"',
            "loop = true",
            'pacing = "fixed"',
            f"fps = {fps}",
            'encoding = "raw-bgr8"',
            "",
        ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.toml").write_text("\n".join(lines))
    return names


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(
    endpoint: str,
    cameras: list[str],
    templates: list[str],
    warmup: float,
    seconds: float,
    pids: Sequence[int] = (),
) -> dict[str, Any]:
    """len(cameras) controllers, controller k asking about cameras[k] as fast as answers come;
    `pids`: the worker processes whose CPU time per answer is reported (a figure other jobs on
    shared cores disturb less than answers/s)."""
    from pnp_vision.client import VisionClient
    from pnp_vision.errors import Busy

    lock = threading.Lock()
    latencies: list[float] = []
    batches: collections.Counter[int] = collections.Counter()
    counts = {"ok": 0, "busy": 0, "error": 0, "resends": 0}
    errors: collections.Counter[str] = collections.Counter()
    first_errors: dict[str, str] = {}  # one message of each kind: what a failed stage says
    start = threading.Barrier(len(cameras) + 1)
    marks: dict[str, float] = {}

    def controller(k: int) -> None:
        template = templates[k % len(templates)]
        with VisionClient(endpoint, timeout=60.0, retries=0) as client:
            with contextlib.suppress(Exception):  # connected and frames flowing (else: counted)
                client.inspect(cameras[k], template, max_age=MAX_AGE_S)
            start.wait(timeout=120.0)
            while (now := time.monotonic()) < marks["end"]:
                counted = now >= marks["from"]
                try:
                    got = client.inspect(cameras[k], template, max_age=MAX_AGE_S)
                except Busy:
                    with lock:
                        counts["busy"] += counted
                    continue
                except Exception as exc:
                    with lock:
                        counts["error"] += counted
                        errors[type(exc).__name__] += counted
                        first_errors.setdefault(type(exc).__name__, str(exc)[:300])
                    continue
                if counted and time.monotonic() <= marks["end"]:
                    with lock:
                        counts["ok"] += 1
                        latencies.append(got.round_trip_ms)
                        batches[got.timings.batch] += 1
            if "," in endpoint:
                with lock:
                    counts["resends"] += client.resends

    threads = [
        threading.Thread(target=controller, args=(k,), daemon=True) for k in range(len(cameras))
    ]
    for t in threads:
        t.start()
    load_before = os.getloadavg()[0]
    now = time.monotonic()
    marks["from"], marks["end"] = now + warmup, now + warmup + seconds
    start.wait(timeout=120.0)
    time.sleep(max(0.0, marks["from"] - time.monotonic()))  # the warm-up, not counted
    cpu_from = [cpu_seconds(pid) for pid in pids]
    time.sleep(max(0.0, marks["end"] - time.monotonic()))
    cpu_to = [cpu_seconds(pid) for pid in pids]
    for t in threads:
        t.join(warmup + seconds + 120)
    used = [b - a for a, b in zip(cpu_from, cpu_to, strict=True) if a is not None and b is not None]
    return {
        "controllers": len(cameras),
        "seconds": seconds,
        **counts,
        "errors_by_kind": errors,
        "first_errors": first_errors,
        "latencies": latencies,
        "batches": batches,
        "cpu_s": sum(used) if used else None,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def summary(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of `drive` on one worker and K, pooled: answers/s over their time, percentiles
    over all their round trips, batch sizes as the replies said."""
    seconds = sum(p["seconds"] for p in parts)
    latencies = [ms for p in parts for ms in p["latencies"]]
    batches: collections.Counter[int] = sum((p["batches"] for p in parts), collections.Counter())
    errors: collections.Counter[str] = sum(
        (p["errors_by_kind"] for p in parts), collections.Counter()
    )
    counts = {k: sum(p[k] for p in parts) for k in ("ok", "busy", "error", "resends")}
    cpu = [p["cpu_s"] for p in parts]
    seen = sorted(batches.elements())
    return {
        "controllers": parts[0]["controllers"],
        "rounds": len(parts),
        "seconds": seconds,
        "answers_per_s": round(counts["ok"] / seconds, 2),
        "answers_per_s_by_round": [round(p["ok"] / p["seconds"], 2) for p in parts],
        **counts,
        "errors_by_kind": dict(errors),
        "first_errors": {k: v for p in parts for k, v in p["first_errors"].items()},
        "p50_ms": _pct(latencies, 50),
        "p99_ms": _pct(latencies, 99),
        "batch_sizes": {str(k): v for k, v in sorted(batches.items())},
        "batch_mean": round(statistics.fmean(seen), 2) if seen else None,
        "batch_max": max(seen) if seen else None,
        "worker_cpu_ms_per_answer": (
            round(sum(cpu) * 1000 / counts["ok"], 3)
            if counts["ok"] and all(c is not None for c in cpu)
            else None
        ),
        "load_before": round(min(p["load_before"] for p in parts), 2),
        "load_max": round(max(max(p["load_before"], p["load_after"]) for p in parts), 2),
    }


@contextlib.contextmanager
def stack(
    args: argparse.Namespace, run_dir: Path, cameras_dir: Path, names: list[str]
) -> Iterator[dict[str, Any]]:
    """Capture + the batching worker(s) + the one-at-a-time peer, ready."""
    from pnp_vision.stack.launch import ipc_endpoint, start_capture, start_worker, wait_until_ready

    env = {
        "PNP_VISION_LOG_LEVEL": "WARNING",
        "PNP_VISION_DEFAULT_DEADLINE_S": "30",
        "PNP_VISION_CAMERA_DISCOVERY_S": "10",
    }
    if args.prompts:
        env["PNP_VISION_PROMPTS_DIR"] = str(args.prompts)
    if args.blas_threads:
        env["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    if args.memory_limit_gb:  # the workers share one device: each its own part of it
        env["PNP_VISION_MEMORY_LIMIT_GB"] = str(args.memory_limit_gb)
    batched = {
        **env,
        "PNP_VISION_BATCH_SIZE": str(args.batch_size),
        "PNP_VISION_BATCH_WAIT_S": str(args.batch_wait),
    }
    peer = {**env, "PNP_VISION_BATCH_SIZE": "1"}
    with contextlib.ExitStack() as stack:
        capture = start_capture(
            ipc_endpoint(run_dir, "frames"), log_dir=run_dir, cameras=names, cameras_dir=cameras_dir
        )
        stack.callback(capture.stop)
        workers = {}
        plan = [("batched", batched), ("peer", peer)]
        if args.two_workers:
            plan.append(("batched2", batched))
        for name, worker_env in plan:
            proc = start_worker(
                ipc_endpoint(run_dir, name),
                capture.endpoint,
                model_dir=args.model,
                log_dir=run_dir,
                queue_size=args.queue_size,
                env=worker_env,
            )
            stack.callback(proc.stop)
            workers[name] = proc
        statuses = {
            name: wait_until_ready(proc, args.ready_timeout, cameras=names[:1], watch=[capture])
            for name, proc in workers.items()
        }
        yield {"workers": workers, "status": statuses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controllers", default="1,2,4,8,16,32", help="concurrency levels")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured, per round")
    parser.add_argument("--warmup", type=float, default=1.0, help="not counted, before each")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per worker")
    parser.add_argument(
        "--prewarm", type=float, default=0.0, help="s of load on each worker first, not counted"
    )
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped inspector)")
    parser.add_argument(
        "--shape", choices=["3b", "7b"], help="a random-weight folder of this size (GPU stage)"
    )
    parser.add_argument("--prompts", type=Path, help="template folder (default: the shipped one)")
    parser.add_argument("--templates", default=",".join(LEARNED), help="asked in turn")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batch-wait", type=float, default=0.002, help="batch_wait_s")
    parser.add_argument("--queue-size", type=int, default=64)
    parser.add_argument("--fps", type=float, default=2.0, help="each replay camera's pace")
    parser.add_argument("--two-workers", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--blas-threads", type=int, help="OPENBLAS_NUM_THREADS of both workers (default: unset)"
    )
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument(
        "--memory-limit-gb", type=float, help="memory_limit_gb of each worker (GPU: they share it)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default="service_throughput", help="JSON file name")
    parser.add_argument("--logs", type=Path, help="keep the capture and worker logs here")
    args = parser.parse_args()

    from pnp_vision.config import PROJECT_ROOT

    run_dir = Path(tempfile.mkdtemp(prefix="pnpv-tp-", dir="/tmp"))
    if args.shape:
        t0 = time.monotonic()
        args.model, args.prompts = shaped_model(args.shape, run_dir)
        args.templates = "bench_check"
        print(
            f"{args.shape} folder {args.model} ready in {time.monotonic() - t0:.0f} s", flush=True
        )
    args.model = args.model or PROJECT_ROOT / "models" / "pnp-inspector"
    levels = [int(x) for x in args.controllers.split(",")]
    templates = [t for t in args.templates.split(",") if t]
    names = write_cameras(
        run_dir / "cameras", max(levels), PROJECT_ROOT / "recordings" / "demo", args.fps
    )
    rows: list[dict[str, Any]] = []
    two: dict[str, Any] | None = None
    started = time.time()
    try:
        with stack(args, run_dir, run_dir / "cameras", names) as running:
            workers = running["workers"]
            info = running["status"]["batched"].model.info
            if args.prewarm:  # every batch size once (compiles of new shapes on GPUs)
                for proc in workers.values():
                    drive(proc.endpoint, names[: max(levels)], templates, args.prewarm, 0.0)
            for i, k in enumerate(levels):
                parts: dict[str, list[dict[str, Any]]] = {"peer": [], "batched": []}
                for r in range(args.rounds):  # alternating, so drift hits both alike
                    order = ["peer", "batched"] if (i + r) % 2 == 0 else ["batched", "peer"]
                    for name in order:
                        parts[name].append(
                            drive(
                                workers[name].endpoint,
                                names[:k],
                                templates,
                                args.warmup,
                                args.seconds,
                                [workers[name].pid],
                            )
                        )
                row: dict[str, Any] = {"controllers": k}
                for name in ("peer", "batched"):
                    row[name] = summary(parts[name])
                    _progress(name, row[name])
                rows.append(row)
            if args.two_workers:
                k = 16 if 16 in levels else max(levels)
                both = f"{workers['batched'].endpoint},{workers['batched2'].endpoint}"
                one_two: dict[str, list[dict[str, Any]]] = {"one": [], "two": []}
                for r in range(args.rounds):
                    for name in ("one", "two") if r % 2 == 0 else ("two", "one"):
                        endpoint = both if name == "two" else workers["batched"].endpoint
                        pids = [workers["batched"].pid]
                        if name == "two":
                            pids.append(workers["batched2"].pid)
                        one_two[name].append(
                            drive(endpoint, names[:k], templates, args.warmup, args.seconds, pids)
                        )
                two = {"controllers": k, **{n: summary(p) for n, p in one_two.items()}}
                _progress("batched x1", two["one"])
                _progress("batched x2", two["two"])
    finally:
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in run_dir.glob("*.log"):
                shutil.copy(log, args.logs / log.name)
        shutil.rmtree(run_dir, ignore_errors=True)
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "model": str(args.model),
        "shape": args.shape,
        "model_info": info,
        "templates": templates,
        "cameras_fps": args.fps,
        "batch_size": args.batch_size,
        "batch_wait_s": args.batch_wait,
        "queue_size": args.queue_size,
        "blas_threads": args.blas_threads,
        "transport": "ipc://",
        "started": started,
        "levels": rows,
        "two_workers": two,
    }
    _print(result)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")
    return 0


def _progress(name: str, got: dict[str, Any]) -> None:
    print(
        f"  {name:<10} K={got['controllers']:>2} {got['answers_per_s']:>8.1f}/s "
        f"p50 {got['p50_ms']} p99 {got['p99_ms']} ms batch {got['batch_mean']} "
        f"busy {got['busy']} errors {got['error']} worker CPU "
        f"{got['worker_cpu_ms_per_answer']} ms/answer load {got['load_before']}-{got['load_max']}",
        flush=True,
    )


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def _print(r: dict[str, Any]) -> None:
    info = r["model_info"]
    print(
        f"\nservice throughput, {Path(r['model']).name} ({info.get('device')}, "
        f"{info.get('dtype')}), {r['machine']['cpus']} CPUs, batch_size {r['batch_size']}, "
        f"batch_wait_s {r['batch_wait_s']}, templates {', '.join(r['templates'])}"
    )
    print("(/s: answers per second; p50/p99: round trip ms; cpu: worker CPU ms per answer)")
    head = (
        f"{'K':>3} | {'one at a time /s':>16} {'p50':>6} {'p99':>6} {'cpu':>5} | "
        f"{'batched /s':>10} {'p50':>6} {'p99':>6} {'cpu':>5} {'batch':>5} {'max':>3} "
        f"{'busy':>4} {'err':>3} | {'/s':>5} {'p99':>5} {'cpu':>5} | {'load':>7}"
    )
    print(head)
    print("-" * len(head))
    for row in r["levels"]:
        p, b = row["peer"], row["batched"]
        print(
            f"{row['controllers']:>3} | {p['answers_per_s']:>16.1f} {_f(p['p50_ms'])} "
            f"{_f(p['p99_ms'])} {_f(p['worker_cpu_ms_per_answer'], 5, 2)} | "
            f"{b['answers_per_s']:>10.1f} {_f(b['p50_ms'])} {_f(b['p99_ms'])} "
            f"{_f(b['worker_cpu_ms_per_answer'], 5, 2)} {_f(b['batch_mean'], 5)} "
            f"{b['batch_max'] or 0:>3} {b['busy'] + p['busy']:>4} {b['error'] + p['error']:>3} | "
            f"{_ratio(b['answers_per_s'], p['answers_per_s']):>5} "
            f"{_ratio(b['p99_ms'], p['p99_ms']):>5} "
            f"{_ratio(b['worker_cpu_ms_per_answer'], p['worker_cpu_ms_per_answer']):>5} | "
            f"{b['load_before']:>4.1f}-{b['load_max']:.1f}"
        )
    two = r["two_workers"]
    if two:
        one, both = two["one"], two["two"]
        print(
            f"\ntwo batching workers behind one client, K={two['controllers']}: "
            f"{both['answers_per_s']:.1f}/s (p99 {both['p99_ms']} ms, resends {both['resends']}) "
            f"against one: {one['answers_per_s']:.1f}/s (p99 {one['p99_ms']} ms): "
            f"{_ratio(both['answers_per_s'], one['answers_per_s'])}"
        )


def _f(value: float | None, width: int = 6, digits: int = 1) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


if __name__ == "__main__":
    sys.exit(main())
