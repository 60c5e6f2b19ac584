"""Service fixtures: real capture + worker subprocesses on ipc:// endpoints, raw ZeroMQ sockets.

Starting a worker costs seconds (imports + model load), so one capture+worker pair serves a
whole module; only the fault tests start their own. Every receive has a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.stack.launch import ServiceStack, service_stack

SHARED_QUEUE_SIZE = 4
SHARED_MAX_REQUEST_BYTES = 1 << 20  # larger requests get a bad_request reply
SHARED_MAX_MESSAGE_BYTES = 4 << 20  # larger frames are dropped by ZeroMQ itself


@pytest.fixture(scope="session")
def service_model(tiny_model_dir: Callable[[str], Path]) -> Path:
    return tiny_model_dir("qwen2_5_vl")


@pytest.fixture(scope="module")
def run_dir() -> Iterator[Path]:
    """A short folder for ipc:// sockets and child logs (Unix socket paths are short)."""
    path = Path(tempfile.mkdtemp(prefix="pnpv-", dir="/tmp"))
    yield path
    if not os.environ.get("PNP_VISION_KEEP_TEST_RUNS"):  # set it to keep child logs to read
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(service_model: Path, run_dir: Path) -> Iterator[ServiceStack]:
    with service_stack(
        model_dir=service_model,
        queue_size=SHARED_QUEUE_SIZE,
        worker_env={
            "PNP_VISION_MAX_REQUEST_BYTES": str(SHARED_MAX_REQUEST_BYTES),
            "PNP_VISION_MAX_MESSAGE_BYTES": str(SHARED_MAX_MESSAGE_BYTES),
        },
        run_dir=run_dir,
    ) as running:
        yield running


@pytest.fixture
def client(stack: ServiceStack) -> Iterator[VisionClient]:
    with VisionClient(stack.requests_endpoint, timeout=20.0, retries=0) as c:
        yield c


@pytest.fixture
def sockets() -> Iterator[Callable[..., zmq.Socket]]:
    """`sockets(endpoint, zmq.DEALER)` -> a connected socket, closed with linger 0 afterwards."""
    ctx = zmq.Context()
    opened: list[zmq.Socket] = []

    def make(endpoint: str, kind: int = zmq.DEALER) -> zmq.Socket:
        sock = ctx.socket(kind)
        sock.linger = 0
        sock.connect(endpoint)
        opened.append(sock)
        return sock

    yield make
    for sock in opened:
        sock.close(linger=0)
    ctx.term()


@pytest.fixture(scope="session")
def limits() -> dict[str, int]:
    """The settings the shared worker runs with."""
    return {
        "queue_size": SHARED_QUEUE_SIZE,
        "max_request_bytes": SHARED_MAX_REQUEST_BYTES,
        "max_message_bytes": SHARED_MAX_MESSAGE_BYTES,
    }


@pytest.fixture(scope="session")
def recv_reply() -> Callable[..., dict[str, Any]]:
    return _recv_reply


@pytest.fixture(scope="session")
def collect_replies() -> Callable[..., dict[str, list[dict[str, Any]]]]:
    return _collect_replies


def _recv_reply(sock: zmq.Socket, timeout: float = 20.0) -> dict[str, Any]:
    """The next reply's JSON (the last frame), failing the test instead of hanging."""
    assert sock.poll(int(timeout * 1000)), f"no reply within {timeout} s"
    return json.loads(sock.recv_multipart()[-1])


def _collect_replies(
    sock: zmq.Socket, ids: set[str], timeout: float = 60.0
) -> dict[str, list[dict[str, Any]]]:
    """Replies by id until every id has one; then any extra that arrives within 0.5 s."""
    got: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    end = time.monotonic() + timeout
    while any(not v for v in got.values()):
        left = end - time.monotonic()
        assert left > 0, f"missing replies for {[i for i, v in got.items() if not v]}"
        if sock.poll(int(left * 1000)):
            reply = json.loads(sock.recv_multipart()[-1])
            got.setdefault(reply["id"], []).append(reply)
    while sock.poll(500):  # a duplicate reply would arrive right behind the others
        reply = json.loads(sock.recv_multipart()[-1])
        got.setdefault(reply["id"], []).append(reply)
    return got


@pytest.fixture(scope="session")
def sample_png() -> bytes:
    """A real frame of the bundled recording, as PNG bytes."""
    frames = sorted((PROJECT_ROOT / "recordings" / "demo").glob("*.png"))
    if frames:
        return frames[0].read_bytes()
    import cv2
    import numpy as np

    image = np.full((96, 128, 3), 40, np.uint8)
    cv2.circle(image, (64, 48), 20, (200, 200, 200), -1)
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()
