"""CPU used by a worker with nothing to do: what a polling tick costs when no request comes.

Starts `pnp-vision worker` on the tiny model (and, unless `--no-frames`, `pnp-vision capture` on
the bundled recording, so the frame subscriber's own decoding is included), waits until it is
ready, then reads utime+stime of the worker process from /proc/<pid>/stat over `--seconds`.

    PYTHONPATH=<tree> .venv/bin/python bench/idle_cpu.py [--seconds 10] [--no-frames]

The package comes from PYTHONPATH, so the same script measures another tree (an A/B by commit).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-frames", action="store_true", help="no capture daemon publishing")
    parser.add_argument("--model", type=Path, help="model folder (default: the tiny model)")
    args = parser.parse_args()

    import pnp_vision
    from pnp_vision.devtools.tiny_models import ensure_tiny_model
    from pnp_vision.stack.launch import (
        DEMO_CAMERAS,
        ipc_endpoint,
        start_capture,
        start_worker,
        wait_until_ready,
    )

    model = args.model or ensure_tiny_model()
    run = Path(tempfile.mkdtemp(prefix="pnpv-idle-", dir="/tmp"))
    frames = ipc_endpoint(run, "frames")
    capture = None
    if not args.no_frames:
        capture = start_capture(frames, log_dir=run, cameras_dir=DEMO_CAMERAS)
    worker = start_worker(ipc_endpoint(run, "requests"), frames, model_dir=model, log_dir=run)
    try:
        cameras = [] if args.no_frames else ["demo"]
        wait_until_ready(worker, 120.0, cameras=cameras, watch=[capture] if capture else [])
        time.sleep(1.0)  # let the ready-check's connection go away before measuring
        before, t0 = cpu_seconds(worker.pid), time.monotonic()
        time.sleep(args.seconds)  # the measurement window: nothing is asked meanwhile
        used, elapsed = cpu_seconds(worker.pid) - before, time.monotonic() - t0
    finally:
        worker.stop()
        if capture is not None:
            capture.stop()
    result = {
        "package": str(Path(pnp_vision.__file__).parent),
        "frames": not args.no_frames,
        "seconds": round(elapsed, 2),
        "cpu_s": round(used, 3),
        "cpu_percent": round(100 * used / elapsed, 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
