"""A consumer slower than the camera sees recent frames, and nothing queues without bound."""

from __future__ import annotations

from pathlib import Path

import zmq

from pnp_vision.capture.cameras import CameraConfig
from pnp_vision.capture.daemon import CaptureDaemon
from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.protocol.frames import unpack_frame


def test_slow_consumers_get_recent_frames_and_bounded_queues(
    tmp_path: Path, endpoint: str, context: zmq.Context, make_images, write_recording, wait_until
) -> None:
    write_recording(tmp_path / "rec", make_images(4, width=640, height=480))
    cam = CameraConfig(name="fast", source=str(tmp_path / "rec"), loop=True, pacing="drain")
    with CaptureDaemon([cam], endpoint, context=context, sndhwm=2) as daemon:
        # A raw SUB socket that does not read at all while 300 frames (~90 MB) go out.
        raw = context.socket(zmq.SUB)
        raw.linger = 0
        raw.rcvhwm = 2
        raw.subscribe(b"frame.fast")
        raw.connect(endpoint)
        with FrameSubscriber(endpoint, cameras=["fast"], ring_size=4, context=context) as sub:
            sub.wait_fresh("fast", 0, 5)
            start = daemon.statuses()["fast"].frames
            daemon.wait_for("fast", lambda s: s.frames >= start + 300, 30)
            # The FrameSubscriber's thread kept draining: its newest frame is recent ...
            newest = daemon.statuses()["fast"].last_seq
            latest = sub.latest("fast")
            assert latest is not None
            assert newest - latest.header.seq < 50
            # ... and it holds no more than its ring.
            assert len(sub.frames("fast")) <= 4

    # The daemon is stopped; whatever ZeroMQ kept for the raw socket is all there is to read:
    # a handful of messages, not the 300 published while it was not reading.
    queued = 0
    while raw.poll(200):
        unpack_frame(raw.recv_multipart())
        queued += 1
        if queued > 60:
            break
    raw.close()
    assert 0 < queued <= 16
