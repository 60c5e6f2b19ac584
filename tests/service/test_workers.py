"""Several workers behind one client endpoint list (`pnp_vision.pool`): real worker processes on
one capture daemon, the client's one DEALER connected to each ready worker.

A worker SIGKILLed while it holds requests loses none (they go to the other at once, not after
a timeout); a worker that answers `busy` or drains passes its requests on; a down endpoint is
left out by the health probes; with none up the client says `no_worker`. History, crops and
reloads reach every worker. A worker subscribes
to every capture daemon whose cameras it serves (comma-separated frames endpoints).
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

from pnp_vision.client import NoWorker, VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.stack.launch import (
    DEMO_CAMERAS,
    ServiceProcess,
    ipc_endpoint,
    start_capture,
    start_worker,
    wait_until_ready,
)

CAMERA = "demo"


@pytest.fixture(scope="module")
def capture(run_dir: Path) -> Iterator[ServiceProcess]:
    proc = start_capture(ipc_endpoint(run_dir, "frames"), log_dir=run_dir, cameras_dir=DEMO_CAMERAS)
    yield proc
    proc.send_signal(signal.SIGCONT)
    proc.stop()


@pytest.fixture
def start(
    capture: ServiceProcess, run_dir: Path, service_model: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """`start(name, **env)` -> a ready worker on the shared capture; stopped after the test."""
    started: list[ServiceProcess] = []

    def make(name: str, queue_size: int = 16, **env: str) -> ServiceProcess:
        proc = start_worker(
            ipc_endpoint(run_dir, name),
            capture.endpoint,
            model_dir=service_model,
            log_dir=run_dir,
            queue_size=queue_size,
            env={f"PNP_VISION_{k.upper()}": v for k, v in env.items()},
        )
        started.append(proc)
        wait_until_ready(proc, 90.0, cameras=[CAMERA], watch=[capture])
        return proc

    yield make
    for proc in started:
        proc.kill()


def _status(worker: ServiceProcess) -> Any:
    with VisionClient(worker.endpoint, timeout=5.0, retries=0) as client:
        return client.status()


class Controllers:
    """Controller threads asking through one endpoint list until stopped; every request is
    counted when sent and when answered, so a lost one shows as a difference or an error."""

    def __init__(self, endpoints: str, count: int, **ask: Any) -> None:
        self.endpoints, self.ask = endpoints, ask
        self.sent = [0] * count
        self.answered = [0] * count
        self.errors: list[str] = []
        self.slowest_ms = 0.0
        self.resends = self.reconnects = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(count)]

    def __enter__(self) -> Controllers:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60.0)
        assert not any(t.is_alive() for t in self._threads), "a controller hangs"

    @property
    def total(self) -> int:
        return sum(self.answered)

    def _run(self, i: int) -> None:
        with VisionClient(self.endpoints, timeout=15.0, retries=2) as client:
            while not self._stop.is_set():
                self.sent[i] += 1
                try:
                    got = client.inspect(CAMERA, "nozzle_alignment", deadline=30.0, **self.ask)
                except Exception as exc:  # reported by the test's assertions
                    with self._lock:
                        self.errors.append(repr(exc))
                    continue
                self.answered[i] += 1
                with self._lock:
                    self.slowest_ms = max(self.slowest_ms, got.round_trip_ms)
            with self._lock:
                self.resends += client.resends
                self.reconnects += client.reconnects


def test_a_sigkilled_worker_loses_no_request_under_load(start, capture) -> None:
    a, b = start("wa"), start("wb")
    with Controllers(f"{a.endpoint},{b.endpoint}", 4, frame="fresh") as load:
        wait_until(
            lambda: min(_status(w).counters["inspect"] for w in (a, b)) >= 3,
            30.0,
            "both workers answer",
        )
        with paused(capture):  # new requests wait in their worker for a fresh frame ...
            holder = wait_until(
                lambda: next((w for w in (a, b) if _status(w).queue.waiting_for_frame), None),
                10.0,
                "a worker holds requests",
            )
            holder.popen.send_signal(signal.SIGKILL)  # ... when that worker dies
            assert holder.wait(10.0) == -signal.SIGKILL
        at_kill = load.total
        wait_until(lambda: load.total >= at_kill + 20, 60.0, "answers go on after the kill")
    assert load.errors == []
    assert load.sent == load.answered  # every request sent was answered
    assert load.resends >= 1  # the requests the dead worker held went to the other at once ...
    assert load.reconnects == 0  # ... not after a timeout
    assert load.slowest_ms < 15_000


def test_a_busy_or_draining_worker_passes_requests_on(start, capture) -> None:
    a = start("busy", queue_size=1, batch_size="1")
    b = start("idle")
    parked = zmq.Context.instance().socket(zmq.DEALER)
    parked.linger = 0
    parked.connect(a.endpoint)
    with paused(capture), VisionClient(f"{a.endpoint},{b.endpoint}", timeout=15.0) as client:
        body = {"kind": "inspect", "id": "parked", "camera": CAMERA, "frame": "fresh",
                "questions": [{"template": "tombstone"}], "deadline_ms": 30000}  # fmt: skip
        parked.send_multipart([json.dumps(body).encode()])
        wait_until(lambda: _status(a).queue.waiting_for_frame == 1, 10.0, "the first is full")
        for _ in range(3):  # one DEALER, two pipes: some of these go to the full worker first
            assert client.inspect(CAMERA, "nozzle_alignment", max_age=120.0).answer in ("YES", "NO")
        assert client.resends >= 1
        assert _status(a).errors.get("busy", 0) >= 1
        a.popen.send_signal(signal.SIGTERM)  # drains: answers shutting_down, then exits
        for _ in range(3):
            assert client.inspect(CAMERA, "nozzle_alignment", max_age=120.0).answer in ("YES", "NO")
    assert parked.poll(30_000), "the parked request got no reply"
    parked.close(linger=0)
    assert a.wait(30.0) == 0


def test_history_crops_and_reloads_reach_every_worker(start) -> None:
    a, b = start("ha"), start("hb")
    with VisionClient(f"{a.endpoint},{b.endpoint}", timeout=30.0) as client:
        asked = [client.inspect(CAMERA, "tombstone").id for _ in range(6)]
        by_worker = {w.endpoint: _status(w).counters["inspect"] for w in (a, b)}
        assert all(n >= 1 for n in by_worker.values()), by_worker  # both answered some
        seen = [i.id for i in client.recent(limit=20)]
        assert set(asked) <= set(seen)  # both workers' histories, merged
        assert all(client.crop(request_id)[:8] == b"\x89PNG\r\n\x1a\n" for request_id in asked)
        reloaded = client.reload()
        assert reloaded.model.generation == 2
    assert [_status(w).model.identity.generation for w in (a, b)] == [2, 2]


def test_health_leaves_out_a_down_endpoint_and_none_up_is_no_worker(start, run_dir) -> None:
    b = start("up")
    down = ipc_endpoint(run_dir, "nobody")
    with VisionClient(f"{down},{b.endpoint}", timeout=10.0, connect_timeout=2.0) as client:
        for _ in range(4):
            assert client.inspect(CAMERA, "tombstone").answer in ("YES", "NO")
        health = client.workers()
    assert health[b.endpoint].ready and health[b.endpoint].status is not None
    assert not health[down].ready and health[down].error
    nobody = f"{down},{ipc_endpoint(run_dir, 'nobody2')}"
    started = time.monotonic()
    client = VisionClient(nobody, timeout=5.0, connect_timeout=1.0)
    with client, pytest.raises(NoWorker, match="no worker ready"):
        client.ping()
    assert time.monotonic() - started < 5.0


def test_a_worker_serves_the_cameras_of_two_capture_daemons(
    capture, run_dir: Path, service_model: Path, tmp_path: Path
) -> None:
    cameras = tmp_path / "cameras"
    cameras.mkdir()
    (cameras / "line2.toml").write_text(
        f'[[camera]]\nname = "line2"\nsource = "{PROJECT_ROOT / "recordings" / "demo"}"\n'
        'kind = "recording"\nloop = true\nencoding = "raw-bgr8"\n'
    )
    second = start_capture(
        ipc_endpoint(run_dir, "frames2"), log_dir=run_dir, cameras=["line2"], cameras_dir=cameras
    )
    worker = start_worker(
        ipc_endpoint(run_dir, "both"),
        f"{capture.endpoint},{second.endpoint}",
        model_dir=service_model,
        log_dir=run_dir,
    )
    try:
        wait_until_ready(worker, 90.0, cameras=[CAMERA, "line2"], watch=[capture, second])
        with VisionClient(worker.endpoint, timeout=15.0) as client:
            for camera in (CAMERA, "line2"):
                got = client.inspect(camera, "tombstone", frame="fresh")
                assert got.frame is not None and got.frame.camera == camera
    finally:
        worker.kill()
        second.stop()
