"""Faults with real processes: a camera that stops publishing, a worker killed with SIGKILL in
the middle of a request and started again, and a SIGTERM drain.

These tests run their own capture daemon (paused with SIGSTOP to stop its frames) and workers on
one fixed requests endpoint, so a restarted worker is found by the same client.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from waits import paused, wait_until

from pnp_vision.client import VisionClient
from pnp_vision.errors import NoFrame
from pnp_vision.stack.launch import (
    DEMO_CAMERAS,
    ServiceProcess,
    ipc_endpoint,
    start_capture,
    start_worker,
    wait_until_ready,
)

CAMERA = "demo"
READY_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def capture(run_dir: Path) -> Iterator[ServiceProcess]:
    proc = start_capture(ipc_endpoint(run_dir, "frames"), log_dir=run_dir, cameras_dir=DEMO_CAMERAS)
    yield proc
    proc.send_signal(signal.SIGCONT)
    proc.stop()


class Workers:
    """Workers started one after another on the same endpoints; `current` is the live one."""

    def __init__(self, capture: ServiceProcess, run_dir: Path, model_dir: Path) -> None:
        self.capture = capture
        self.run_dir = run_dir
        self.model_dir = model_dir
        self.endpoint = ipc_endpoint(run_dir, "requests")
        self.current: ServiceProcess | None = None

    def start(self) -> ServiceProcess:
        assert self.current is None or not self.current.alive()
        self.current = start_worker(
            self.endpoint,
            self.capture.endpoint,
            model_dir=self.model_dir,
            log_dir=self.run_dir,
            queue_size=16,
            env={"PNP_VISION_BATCH_SIZE": "4"},  # the drain test wants some still queued
        )
        return self.current

    def ready(self) -> ServiceProcess:
        """The live worker, started if needed, with frames of the demo camera flowing."""
        if self.current is None or not self.current.alive():
            self.start()
        assert self.current is not None
        wait_until_ready(self.current, READY_TIMEOUT, cameras=[CAMERA], watch=[self.capture])
        return self.current


@pytest.fixture(scope="module")
def workers(capture: ServiceProcess, run_dir: Path, service_model: Path) -> Iterator[Workers]:
    pool = Workers(capture, run_dir, service_model)
    yield pool
    if pool.current is not None:
        pool.current.stop()


def test_camera_that_stopped_publishing_gives_no_frame_within_the_deadline(
    capture: ServiceProcess, workers: Workers
) -> None:
    worker = workers.ready()
    with VisionClient(worker.endpoint, timeout=20.0, retries=0) as client:
        with paused(capture):
            started = time.monotonic()
            with pytest.raises(NoFrame, match="captured after the request"):
                client.inspect(CAMERA, "tombstone", frame="fresh", deadline=1.0)
            elapsed = time.monotonic() - started
            assert 1.0 <= elapsed < 10.0  # at the deadline: not early, and not hanging
            # The newest frame is now over a second old: `latest` refuses it, never serves it.
            with pytest.raises(NoFrame, match="no frame newer than 500 ms"):
                client.inspect(CAMERA, "tombstone", max_age=0.5)
        resumed = client.inspect(CAMERA, "tombstone", frame="fresh", deadline=10.0)
        assert resumed.frame is not None and resumed.frame.capture_time is not None
        assert resumed.frame.capture_time > started


def test_worker_killed_mid_request_and_restarted_the_retry_succeeds(
    capture: ServiceProcess, workers: Workers
) -> None:
    first = workers.ready()
    outcome: dict[str, Any] = {}

    def ask() -> None:
        with VisionClient(first.endpoint, timeout=3.0, retries=15) as client:
            outcome["sent"] = time.time()
            try:
                outcome["result"] = client.inspect(
                    CAMERA, "nozzle_alignment", frame="fresh", deadline=45.0
                )
            except Exception as exc:  # reported by the assertions below
                outcome["error"] = exc
            outcome["reconnects"] = client.reconnects

    with VisionClient(first.endpoint, timeout=5.0, retries=0) as probe:
        with paused(capture):  # the request waits in the first worker for a fresh frame ...
            caller = threading.Thread(target=ask, daemon=True)
            caller.start()
            wait_until(
                lambda: probe.status().queue.waiting_for_frame == 1,
                10.0,
                "the first worker holds the request",
            )
            first.popen.send_signal(signal.SIGKILL)  # ... when the worker dies
            assert first.wait(10.0) == -signal.SIGKILL
            second = workers.start()
            # The I/O thread answers status while the MLX thread is still loading the model.
            # It is starting: wait for its socket longer than the 2 s "is anyone there?" default.
            with VisionClient(
                second.endpoint, timeout=5.0, retries=3, connect_timeout=30.0
            ) as probe_second:
                loading = probe_second.status()
            assert loading.model.state == "loading" and not loading.ready
        caller.join(timeout=90.0)
    assert not caller.is_alive(), "client call still running after 90 s"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert outcome["reconnects"] >= 1
    assert result.frame is not None and result.frame.capture_time > outcome["sent"]
    assert result.answer in ("YES", "NO")


def test_sigterm_finishes_the_inference_in_flight_and_answers_the_rest_shutting_down(
    workers: Workers,
    sample_png: bytes,
    sockets: Callable[..., zmq.Socket],
    collect_replies: Callable[..., dict],
) -> None:
    worker = workers.ready()
    templates = [
        {"template": "nozzle_alignment"},
        {"template": "part_on_nozzle"},
        {"template": "tombstone"},
        {"template": "feeder_pocket_empty"},
        {"template": "part_marking", "params": {"marking": "R0603"}},
        {"template": "polarity_mark", "params": {"corner": "top_left"}},
    ]
    sock = sockets(worker.endpoint)
    ids = {f"drain-{i}" for i in range(12)}
    for request_id in sorted(ids):
        body = {"kind": "inspect", "id": request_id, "image": True, "questions": templates}
        sock.send_multipart([json.dumps(body).encode(), sample_png])
    with VisionClient(worker.endpoint, timeout=5.0, retries=0) as probe:
        wait_until(
            lambda: (q := probe.status().queue).in_flight >= 1 and q.depth >= 3,
            10.0,
            "a batch in flight and more queued",
        )
    worker.send_signal(signal.SIGTERM)
    replies = collect_replies(sock, ids)
    assert all(len(replies[i]) == 1 for i in ids), {i: len(r) for i, r in replies.items()}
    codes = [r[0]["error"]["code"] if not r[0]["ok"] else "ok" for r in replies.values()]
    assert set(codes) <= {"ok", "shutting_down"}
    assert codes.count("ok") >= 1 and codes.count("shutting_down") >= 1
    assert worker.wait(30.0) == 0, worker.log_tail()
    assert "draining" in worker.log_path.read_text()


def test_worker_with_a_missing_model_folder_exits_with_model_not_found(run_dir: Path) -> None:
    missing = run_dir / "no-such-model"
    worker = start_worker(
        ipc_endpoint(run_dir, "nomodel"),
        ipc_endpoint(run_dir, "noframes"),
        model_dir=missing,
        log_dir=run_dir,
    )
    try:
        assert worker.wait(60.0) == 6  # a start-up error's own exit status
    finally:
        worker.kill()
    log = worker.log_path.read_text()
    assert "error [model_not_found]" in log and str(missing) in log
