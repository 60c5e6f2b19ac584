"""OpenCV reading a real video file (lossless FFV1, written by the test) through the daemon."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import zmq

from pnp_vision.capture.cameras import CameraConfig
from pnp_vision.capture.daemon import CaptureDaemon
from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.protocol.frames import CameraState


def _write_video(path: Path, images: list[np.ndarray], fps: float = 25.0) -> None:
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
    assert writer.isOpened(), "this OpenCV build cannot write FFV1"
    for image in images:
        writer.write(image)
    writer.release()


def test_video_file_frames_arrive_intact(
    tmp_path: Path, endpoint: str, context: zmq.Context, make_images, wait_until
) -> None:
    images = make_images(8, width=96, height=64, seed=3)
    _write_video(tmp_path / "clip.avi", images)
    cam = CameraConfig(name="clip", source=str(tmp_path / "clip.avi"), loop=True, rotate=180)
    with (
        CaptureDaemon([cam], endpoint, context=context),
        FrameSubscriber(endpoint, ring_size=16, context=context) as sub,
    ):
        got = wait_until(
            lambda: (
                len({f.header.source_seq for f in sub.frames("clip")}) == 8 and sub.frames("clip")
            ),
            10,
            "all 8 video frames",
        )
    for frame in got:
        expected = cv2.rotate(images[frame.header.source_seq], cv2.ROTATE_180)
        assert np.array_equal(frame.image, expected)


def test_video_file_ends_and_a_missing_file_fails(tmp_path: Path, make_images) -> None:
    _write_video(tmp_path / "clip.avi", make_images(5, seed=4))
    clip = CameraConfig(name="clip", source=str(tmp_path / "clip.avi"), pacing="drain")
    gone = CameraConfig(name="gone", source=str(tmp_path / "gone.avi"))
    with CaptureDaemon([clip, gone], "inproc://video-ends") as daemon:
        ended = daemon.wait_for("clip", lambda s: s.state is CameraState.ENDED, 10)
        assert ended.frames == 5  # counted before `ended` is reported
        failed = daemon.wait_for("gone", lambda s: s.state is CameraState.FAILED, 5)
    assert ended.last_seq == 4
    assert "gone.avi" in (failed.last_error or "")
