"""Fixtures for the capture tests: real sockets on ipc:// in the test's folder, tiny recordings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import waits
import zmq

from pnp_vision.capture.recording import RecordingWriter
from pnp_vision.protocol.frames import FrameHeader


@pytest.fixture
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh ipc:// endpoint (short path: ipc names are limited to ~100 bytes)."""
    return f"ipc:///tmp/pnpv-test-{uuid.uuid4().hex[:12]}.sock"


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def _make_images(n: int, width: int = 64, height: int = 48, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def _write_recording(
    folder: Path,
    images: list[np.ndarray],
    camera: str = "rec",
    t0: float = 1000.0,
    dt: float = 0.02,
) -> list[FrameHeader]:
    headers = []
    with RecordingWriter(folder) as writer:
        for i, image in enumerate(images):
            header = FrameHeader(
                camera=camera,
                session="recorded-session",
                seq=i,
                capture_time=t0 + i * dt,
                width=image.shape[1],
                height=image.shape[0],
            )
            writer.write(header, image)
            headers.append(header)
    return headers


@pytest.fixture(scope="session")
def make_images():
    """`make_images(n, width=64, height=48, seed=0)` -> random BGR frames."""
    return _make_images


@pytest.fixture(scope="session")
def write_recording():
    """`write_recording(folder, images, camera="rec", t0=1000.0, dt=0.02)` -> the headers."""
    return _write_recording


@pytest.fixture(scope="session")
def wait_until():
    """`wait_until(predicate, timeout, what)` -> the predicate's first truthy value."""
    return waits.wait_until
