"""The worker's I/O loop is driven by events, not ticks.

An in-process `Worker` (real sockets, the tiny model on its MLX thread) fed by this test's own
PUB socket, so the test decides exactly when a frame exists. Its safety-net poll timeout is
raised to an hour: whatever the loop does within these tests, an event made it happen.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from pnp_vision.client import VisionClient
from pnp_vision.config import Settings
from pnp_vision.protocol.frames import FrameHeader, pack_frame
from pnp_vision.service.worker import Worker

CAMERA = "cam"
SESSION = "events-1"
NO_SAFETY_NET_S = 3600.0


@dataclass
class Rig:
    worker: Worker
    pub: zmq.Socket
    requests_endpoint: str
    seq: int = 0

    def publish(self) -> int:
        """One raw frame captured now; returns its seq."""
        header = FrameHeader(
            camera=CAMERA,
            session=SESSION,
            seq=self.seq,
            capture_time=time.time(),
            width=64,
            height=48,
        )
        self.pub.send_multipart(pack_frame(header, np.full((48, 64, 3), 90, np.uint8).tobytes()))
        self.seq += 1
        return header.seq

    def held_seq(self) -> int | None:
        assert self.worker.store is not None
        frame = self.worker.store.subscriber.latest(CAMERA)
        return None if frame is None else frame.header.seq


def _wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := check():
            return value
        time.sleep(0.01)  # polling interval of a deadline-bounded wait
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture(scope="module")
def rig(service_model: Path, run_dir: Path) -> Iterator[Rig]:
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.linger = 0
    frames = f"ipc://{run_dir}/events-frames.sock"
    pub.bind(frames)
    settings = Settings(
        requests_endpoint=f"ipc://{run_dir}/events-requests.sock",
        frames_endpoint=frames,
        model_dir=service_model,
        queue_size=4,
    )
    worker = Worker(settings)
    worker.max_poll_s = NO_SAFETY_NET_S
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            worker.serve()
        except BaseException as exc:  # reported by the fixture below
            failed.append(exc)

    thread = threading.Thread(target=serve, name="worker", daemon=True)
    thread.start()
    rig = Rig(worker, pub, settings.requests_endpoint)
    try:
        assert worker.ready.wait(60.0), failed
        with VisionClient(rig.requests_endpoint, timeout=5.0, retries=0) as client:
            _wait_for(lambda: client.status().ready, 90.0, f"model ready {failed}")
        # Frames until the worker's subscriber holds one (a SUB joins a PUB asynchronously).
        _wait_for(lambda: rig.publish() is not None and rig.held_seq() is not None, 30.0, "frame")
        yield rig
    finally:
        worker.stop()
        thread.join(30.0)
        pub.close()
        context.term()
    assert not thread.is_alive(), "worker did not stop"
    assert not failed, failed


def test_an_idle_worker_sleeps_through_frames_without_waking(rig: Rig) -> None:
    with VisionClient(rig.requests_endpoint, timeout=5.0, retries=0) as client:
        client.ping()  # answered: the loop has handled everything that came before
    before = rig.worker.wakes
    last = [rig.publish() for _ in range(20)][-1]
    _wait_for(lambda: rig.held_seq() == last, 30.0, "the 20 frames reached the worker")
    with zmq.Context() as ctx, ctx.socket(zmq.DEALER) as quiet:
        quiet.linger = 0
        quiet.connect(rig.requests_endpoint)
        assert not quiet.poll(1000)  # a second of idleness (nothing asked, nothing answered)
    # A 200 ms tick would have woken it 5 times, a wake-up per frame 20 times.
    assert rig.worker.wakes - before <= 1


def test_a_fresh_request_is_answered_when_its_frame_arrives(rig: Rig) -> None:
    with zmq.Context() as ctx, ctx.socket(zmq.DEALER) as sock:
        sock.linger = 0
        sock.connect(rig.requests_endpoint)
        request = {
            "kind": "inspect",
            "id": "fresh-event",
            "camera": CAMERA,
            "frame": "fresh",
            "deadline_ms": 600_000,  # far beyond this test: only the frame can end the wait
            "questions": [{"template": "tombstone"}],
        }
        sock.send_multipart([json.dumps(request).encode()])
        with VisionClient(rig.requests_endpoint, timeout=5.0, retries=0) as probe:
            _wait_for(
                lambda: probe.status().queue.waiting_for_frame == 1, 30.0, "the request waits"
            )
        wakes = rig.worker.wakes
        seq = rig.publish()
        # The loop sleeps until the deadline (10 min) unless the frame wakes it.
        assert sock.poll(60_000), "no reply after the frame arrived"
        reply = json.loads(sock.recv_multipart()[-1])
    assert reply["ok"], reply
    assert reply["id"] == "fresh-event" and reply["frame"]["seq"] == seq
    assert rig.worker.wakes - wakes <= 3  # the frame, the completion: no polling in between
