"""FrameSubscriber promises: bad arguments are named, a daemon restart never serves old frames."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq

from pnp_vision.capture.cameras import CameraConfig, load_cameras
from pnp_vision.capture.daemon import CaptureDaemon
from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import ConfigError, NoFrame


def test_bad_arguments_are_named(context: zmq.Context) -> None:
    with pytest.raises(ConfigError, match="'nowhere'"):
        FrameSubscriber("nowhere", context=context)
    with pytest.raises(ConfigError, match="ring_size must be >= 1, got 0"):
        FrameSubscriber("inproc://x", ring_size=0, context=context)


def test_unknown_camera_times_out_with_no_frame(endpoint: str, context: zmq.Context) -> None:
    with (
        FrameSubscriber(endpoint, context=context) as sub,
        pytest.raises(NoFrame, match=r"'ghost'.*nothing received"),
    ):
        sub.wait_fresh("ghost", time.time(), 0.2)


def test_daemon_restart_drops_the_old_session(
    tmp_path: Path, endpoint: str, context: zmq.Context, make_images, write_recording, wait_until
) -> None:
    write_recording(tmp_path / "rec", make_images(3))
    cam = CameraConfig(name="c", source=str(tmp_path / "rec"), loop=True, pacing="fixed", fps=50)
    with FrameSubscriber(endpoint, ring_size=8, context=context) as sub:
        with CaptureDaemon([cam], endpoint, context=context) as first:
            old = sub.wait_fresh("c", 0, 5)
            assert old.header.session == first.session
        with CaptureDaemon([cam], endpoint, context=context) as second:
            new = wait_until(
                lambda: (f := sub.latest("c")) and f.header.session == second.session and f,
                5,
                "a frame of the new session",
            )
            assert second.session != first.session
            assert {f.header.session for f in sub.frames("c")} == {second.session}
            assert sub.get("c", new.header.seq) is new


def test_bundled_demo_camera_replays(endpoint: str, context: zmq.Context) -> None:
    (demo,) = load_cameras(PROJECT_ROOT / "cameras", ["demo"])
    with (
        CaptureDaemon([demo], endpoint, context=context),
        FrameSubscriber(endpoint, context=context) as sub,
    ):
        frame = sub.wait_fresh("demo", time.time(), 5)
    assert frame.image.shape == (240, 320, 3)
    name = f"{frame.header.source_seq:06d}-"
    (png,) = (PROJECT_ROOT / "recordings" / "demo").glob(name + "*.png")
    assert np.array_equal(frame.image, cv2.imread(str(png)))


def test_public_names_do_not_drift() -> None:
    import pnp_vision.capture as capture

    assert capture.__all__ == [
        "CameraConfig",
        "CaptureDaemon",
        "Frame",
        "FrameSubscriber",
        "RecordingWriter",
        "load_cameras",
        "record",
    ]
    assert all(getattr(capture, name) for name in capture.__all__)
