"""A live camera faster than the pipeline: the newest frame is published, older ones dropped.

The source is a fake passed in (a 1 kHz "camera" whose frames carry their number in the
pixels); everything after it is real: the grab thread, PNG encoding, the publisher, ZeroMQ and
the subscriber.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import zmq

from pnp_vision.capture.cameras import CameraConfig
from pnp_vision.capture.daemon import CaptureDaemon
from pnp_vision.capture.sources import Grabbed
from pnp_vision.capture.subscriber import FrameSubscriber


class FastCamera:
    """Delivers frame n (all pixels = n % 256) every millisecond, like a camera with a buffer."""

    def __init__(self, _cam: CameraConfig) -> None:
        self.n = 0
        self.noise = np.random.default_rng(0).integers(0, 2, (480, 640, 3), dtype=np.uint8)

    def open(self) -> None:
        pass

    def read(self) -> Grabbed:
        time.sleep(0.001)
        self.n += 1
        image = self.noise + np.uint8(self.n % 254)  # noisy: PNG encoding takes real time
        return Grabbed(image, time.time())

    def close(self) -> None:
        pass


def test_live_source_publishes_the_newest_frame(
    endpoint: str, context: zmq.Context, wait_until
) -> None:
    cam = CameraConfig(name="fast", source="rtsp://camera.invalid/stream", encoding="png")
    with (
        CaptureDaemon([cam], endpoint, context=context, source_factory=FastCamera) as daemon,
        FrameSubscriber(endpoint, ring_size=32, every_frame=True, context=context) as sub,
    ):
        frames = wait_until(lambda: len(sub.frames("fast")) >= 20 and sub.frames("fast"), 20, "20")
        status = daemon.statuses()["fast"]
    numbers = [int(f.image.min()) for f in frames]  # the noise is 0 or 1: min = n % 254
    gaps = [(b - a) % 254 for a, b in itertools.pairwise(numbers)]
    # PNG encoding is far slower than 1 ms: each publish takes the newest grab, skipping many.
    assert sum(g > 1 for g in gaps) > len(gaps) / 2, gaps
    assert status.drops > status.frames  # grabbed but superseded frames are counted as drops
