"""The whole service under CURVE: real capture + worker processes, authorized and refused peers."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.client import ServiceTimeout, VisionClient
from pnp_vision.errors import NoFrame
from pnp_vision.protocol.requests import StatusResult
from pnp_vision.stack.launch import (
    ServiceProcess,
    ipc_endpoint,
    start_capture,
    start_worker,
)
from pnp_vision.transport.security import Security, generate_keys

CAMERA = "demo"


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pnpc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_curve_everywhere(run_dir: Path, tiny_model_dir: Callable[[str], Path]) -> None:
    keys = run_dir / "keys"
    for name in ("server", "client"):
        generate_keys(name, keys)
    generate_keys("stranger", keys, authorize=False)
    env = {"PNP_VISION_KEYS_DIR": str(keys), "PNP_VISION_CLIENT_KEY": "client"}
    frames, requests = ipc_endpoint(run_dir, "frames"), ipc_endpoint(run_dir, "req")
    capture = start_capture(frames, log_dir=run_dir, env=env)
    worker = None
    try:
        worker = start_worker(
            requests, frames, model_dir=tiny_model_dir("qwen2_5_vl"), log_dir=run_dir, env=env
        )
        authorized = Security(keys_dir=keys, client_name="client")
        ready = _ready(worker, capture, authorized)
        assert ready.cameras[CAMERA].frame_age_ms is not None  # frames crossed CURVE

        with VisionClient(requests, timeout=20, retries=0, security=authorized) as client:
            assert client.inspect(CAMERA, "tombstone").answer in ("YES", "NO")

        stranger = Security(keys_dir=keys, client_name="stranger")
        for security in (stranger, None):  # an unknown key, then plain text
            with (
                VisionClient(requests, timeout=1.0, retries=0, security=security) as client,
                pytest.raises(ServiceTimeout),
            ):
                client.ping()
        assert "auth refused" in worker.log_tail(100)

        # The frames publisher refuses them too.
        for security in (stranger, None):
            with (
                FrameSubscriber(frames, cameras=[CAMERA], security=security) as sub,
                pytest.raises(NoFrame),
            ):
                sub.wait_fresh(CAMERA, 0.0, 1.5)
        with FrameSubscriber(frames, cameras=[CAMERA], security=authorized) as sub:
            assert sub.wait_fresh(CAMERA, 0.0, 10).header.camera == CAMERA
        assert "auth refused" in capture.log_tail(100)
    finally:
        if worker is not None:
            worker.stop()
        capture.stop()


def _ready(worker: ServiceProcess, capture: ServiceProcess, security: Security) -> StatusResult:
    """wait_until_ready uses a plain-text client; under CURVE poll with an authorized one."""
    end = time.monotonic() + 90
    with VisionClient(worker.endpoint, timeout=0.5, retries=0, security=security) as client:
        while time.monotonic() < end:
            assert worker.alive(), worker.log_tail()
            assert capture.alive(), capture.log_tail()
            try:
                status = client.status()
            except ServiceTimeout:
                continue
            view = status.cameras.get(CAMERA)
            if status.ready and view is not None and view.frame_age_ms is not None:
                return status
            time.sleep(0.1)  # polling interval under a deadline
    pytest.fail("worker under CURVE not ready within 90 s:\n" + worker.log_tail())
