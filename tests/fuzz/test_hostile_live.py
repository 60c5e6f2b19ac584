"""The hostile corpus against a live worker process and a live subscriber, over real sockets.

The test plays the capture daemon (it binds the frames PUB) so it can send hostile frames to the
worker's subscriber and to an in-process `FrameSubscriber` at once. Goals checked: the worker
never dies, every hostile request is answered `bad_request` (or dropped by ZeroMQ when over
`max_message_bytes`) and the valid request right after it is answered correctly; every hostile
frame message is dropped and counted, and valid frames keep arriving after it.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.client import VisionClient
from pnp_vision.errors import NoFrame
from pnp_vision.stack.launch import (
    ServiceProcess,
    ipc_endpoint,
    start_worker,
    wait_until_ready,
)

from .hostile import frame_header, hostile_frames, hostile_requests

CAMERA = "fz"
MAX_REQUEST_BYTES = 256 * 1024
MAX_MESSAGE_BYTES = 1024 * 1024


class Rig:
    """The test's frames PUB plus the worker subscribed to it."""

    def __init__(self, run_dir: Path, model_dir: Path) -> None:
        self.context = zmq.Context()
        self.frames_endpoint = ipc_endpoint(run_dir, "frames")
        self.pub = self.context.socket(zmq.PUB)
        self.pub.linger = 0
        self.pub.sndhwm = 10_000
        self.pub.bind(self.frames_endpoint)
        self.seq = 0
        self.worker: ServiceProcess = start_worker(
            ipc_endpoint(run_dir, "requests"),
            self.frames_endpoint,
            model_dir=model_dir,
            log_dir=run_dir,
            env={
                "PNP_VISION_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
                "PNP_VISION_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
                # The corpus checks the parser on every message; the slowing-down of a flooding
                # connection has tests of its own (tests/service/test_bad_peers.py).
                "PNP_VISION_BAD_REQUEST_RATE": "100000",
            },
        )

    def publish_valid(self) -> int:
        """One valid 4x3 raw frame, captured now; returns its seq."""
        header = json.loads(frame_header(CAMERA, self.seq, 4, 3))
        header["capture_time"] = time.time()
        self.pub.send_multipart(
            [f"frame.{CAMERA}".encode(), json.dumps(header).encode(), b"\x40" * 36]
        )
        return self.seq

    def close(self) -> None:
        self.worker.stop()
        self.pub.close(linger=0)
        self.context.term()


@pytest.fixture(scope="module")
def rig(tiny_model_dir: Callable[[str], Path]) -> Iterator[Rig]:
    run_dir = Path(tempfile.mkdtemp(prefix="pnph-", dir="/tmp"))
    made = Rig(run_dir, tiny_model_dir("qwen2_5_vl"))
    try:
        wait_until_ready(made.worker, 120)
        yield made
    finally:
        made.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def _reply(sock: zmq.Socket, timeout_ms: int = 10_000) -> list[bytes]:
    assert sock.poll(timeout_ms), "no reply"
    return sock.recv_multipart()


def _ping_ok(sock: zmq.Socket, rid: str) -> None:
    sock.send_multipart([json.dumps({"kind": "ping", "id": rid}).encode()])
    reply = json.loads(_reply(sock)[-1])
    assert reply["ok"] is True and reply["id"] == rid, reply


def test_every_hostile_request_is_answered_bad_request(rig: Rig) -> None:
    corpus = hostile_requests(MAX_REQUEST_BYTES, MAX_MESSAGE_BYTES)
    assert len(corpus) >= 500
    answered = dropped = with_id = 0
    ctx = rig.context
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(rig.worker.endpoint)
    try:
        for n, hostile in enumerate(corpus):
            if not hostile.reply:  # over max_message_bytes: ZeroMQ drops it and the connection
                with ctx.socket(zmq.DEALER) as victim:
                    victim.linger = 0
                    victim.connect(rig.worker.endpoint)
                    victim.send_multipart(hostile.frames)
                    assert not victim.poll(300), hostile.name
                dropped += 1
            else:
                dealer.send_multipart(hostile.frames)
                parts = _reply(dealer)
                envelope = [b""] if hostile.frames[0] == b"" else []
                assert parts[:-1] == envelope, hostile.name
                reply = json.loads(parts[-1])
                assert reply["ok"] is False, hostile.name
                assert reply["error"]["code"] == "bad_request", (hostile.name, reply)
                assert reply["id"] == hostile.id, (hostile.name, reply)
                with_id += reply["id"] is not None
                answered += 1
            _ping_ok(dealer, f"after-{n}")
        assert rig.worker.alive(), rig.worker.log_tail()
    finally:
        dealer.close(linger=0)
    assert answered + dropped == len(corpus) and dropped >= 1
    assert with_id > answered // 2  # most hostile values sit after a plain id
    log = rig.worker.log_tail(5000)
    assert "bad request" in log and "Traceback" not in log
    with VisionClient(rig.worker.endpoint, timeout=20, retries=0) as client:
        status = client.status()
    assert status.errors.get("bad_request", 0) >= answered
    assert status.errors.get("internal", 0) == 0


def _wait_seen(rig: Rig, subscriber: FrameSubscriber, client: VisionClient, name: str) -> None:
    """Publish valid frames until both the worker and the subscriber hold the newest one."""
    end = time.monotonic() + 20
    rig.seq += 1
    while time.monotonic() < end:
        sent = time.time()
        seq = rig.publish_valid()
        with contextlib.suppress(NoFrame):  # a bounded wait on the subscriber's condition
            subscriber.wait_fresh(CAMERA, sent - 0.001, 0.1)
        mine = subscriber.latest(CAMERA)
        view = client.status().cameras.get(CAMERA)
        if mine is not None and mine.header.seq == seq and view and view.last_seq == seq:
            return
    pytest.fail(f"valid frames stopped arriving after hostile frame {name}")


def test_hostile_frames_are_dropped_and_frames_keep_coming(rig: Rig) -> None:
    corpus = hostile_frames(CAMERA, MAX_MESSAGE_BYTES)
    assert len(corpus) >= 100
    with (
        FrameSubscriber(
            rig.frames_endpoint, cameras=[CAMERA], max_message_bytes=MAX_MESSAGE_BYTES
        ) as subscriber,
        VisionClient(rig.worker.endpoint, timeout=10, retries=0) as client,
    ):
        _wait_seen(rig, subscriber, client, "(none yet)")
        for name, parts in corpus:
            rig.pub.send_multipart(parts)
            _wait_seen(rig, subscriber, client, name)
            assert rig.worker.alive(), rig.worker.log_tail()
            held = subscriber.frames(CAMERA)
            assert all(math.isfinite(f.header.capture_time) for f in held), name
        oversize = sum(1 for name, _ in corpus if name.startswith("oversize/"))
        assert subscriber.link_drops >= oversize
        assert subscriber.errors >= len(corpus) - oversize - 5  # a few land while reconnecting
        counters: dict[str, Any] = client.status().counters
        assert counters["frame_link_drops"] >= oversize
        assert counters["frame_errors"] >= len(corpus) // 2
        answer = client.inspect(CAMERA, "tombstone", max_age=30.0)
        assert answer.answer in ("YES", "NO")
        assert answer.frame is not None and answer.frame.seq == rig.seq
