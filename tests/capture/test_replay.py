"""Replaying recording folders through the real daemon, publisher and subscriber."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from pnp_vision.capture.cameras import CameraConfig
from pnp_vision.capture.daemon import CaptureDaemon
from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.errors import NoFrame
from pnp_vision.protocol.frames import CameraState, Encoding


def test_replay_delivers_identical_pixels(
    tmp_path: Path, endpoint: str, context: zmq.Context, make_images, write_recording, wait_until
) -> None:
    images = make_images(6)
    write_recording(tmp_path / "rec", images)
    cam = CameraConfig(name="rec", source=str(tmp_path / "rec"), pacing="fixed", fps=100, loop=True)
    with (
        CaptureDaemon([cam], endpoint, context=context),
        FrameSubscriber(endpoint, ring_size=16, context=context) as sub,
    ):
        got = wait_until(
            lambda: (
                len({f.header.source_seq for f in sub.frames("rec")}) == 6 and sub.frames("rec")
            ),
            5,
            "all 6 recorded frames",
        )
    for frame in got:
        assert np.array_equal(frame.image, images[frame.header.source_seq])
        assert frame.header.source_time == pytest.approx(1000 + frame.header.source_seq * 0.02)
        assert not frame.image.flags.writeable
    seqs = [f.header.seq for f in got]
    assert seqs == sorted(seqs)


def test_replay_without_loop_ends(tmp_path: Path, make_images, write_recording) -> None:
    write_recording(tmp_path / "rec", make_images(6))
    cam = CameraConfig(name="rec", source=str(tmp_path / "rec"), pacing="drain")
    with CaptureDaemon([cam], "inproc://replay-ends") as daemon:
        status = daemon.wait_for("rec", lambda s: s.state is CameraState.ENDED, 10)
        assert status.frames == 6  # counted before `ended` is reported
    assert status.last_seq == 5
    assert status.drops == 0  # drain pacing waits for the publisher instead of dropping


def test_corrupt_and_missing_files_are_skipped(
    tmp_path: Path, endpoint: str, context: zmq.Context, make_images, write_recording, wait_until
) -> None:
    images = make_images(5, seed=1)
    write_recording(tmp_path / "rec", images)
    (tmp_path / "rec" / "rec-00000001.png").write_bytes(b"not a png")
    (tmp_path / "rec" / "rec-00000003.png").unlink()
    with (tmp_path / "rec" / "index.jsonl").open("a") as index:
        index.write("{broken json\n")
    cam = CameraConfig(name="rec", source=str(tmp_path / "rec"), pacing="fixed", fps=100, loop=True)
    with (
        CaptureDaemon([cam], endpoint, context=context),
        FrameSubscriber(endpoint, ring_size=16, context=context) as sub,
    ):
        got = wait_until(lambda: len(sub.frames("rec")) >= 10 and sub.frames("rec"), 5, "frames")
    assert {f.header.source_seq for f in got} == {0, 2, 4}
    for frame in got:
        assert np.array_equal(frame.image, images[frame.header.source_seq])


def test_one_missing_camera_does_not_stop_the_others(
    tmp_path: Path, endpoint: str, context: zmq.Context, make_images, write_recording
) -> None:
    write_recording(tmp_path / "rec", make_images(3))
    good = CameraConfig(
        name="good", source=str(tmp_path / "rec"), loop=True, pacing="fixed", fps=30
    )
    gone = CameraConfig(name="gone", source=str(tmp_path / "nothing"), kind="recording")
    with (
        CaptureDaemon([good, gone], endpoint, context=context, status_interval_s=0.2) as daemon,
        FrameSubscriber(endpoint, context=context) as sub,
    ):
        failed = daemon.wait_for("gone", lambda s: s.state is CameraState.FAILED, 5)
        assert "nothing" in (failed.last_error or "")
        first = sub.wait_fresh("good", time.time(), 5)
        # Looping: frames keep coming after the 3-frame recording wrapped.
        later = sub.wait_fresh("good", first.header.capture_time + 0.15, 5)
        assert later.header.seq >= first.header.seq + 3
        # The failed camera keeps reporting, so a late subscriber learns why.
        with pytest.raises(NoFrame, match=r"'gone'.*failed.*nothing"):
            sub.wait_fresh("gone", 0, 2)


@pytest.mark.parametrize("encoding", [Encoding.PNG, Encoding.JPEG])
def test_encoded_frames_decode(
    tmp_path: Path, endpoint: str, context: zmq.Context, encoding: Encoding, write_recording
) -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    image[10:50, 20:60] = (30, 120, 240)
    write_recording(tmp_path / "rec", [image])
    cam = CameraConfig(
        name="rec", source=str(tmp_path / "rec"), loop=True, encoding=encoding, roi=[10, 5, 70, 50]
    )
    with (
        FrameSubscriber(endpoint, context=context) as sub,
        CaptureDaemon([cam], endpoint, context=context),
    ):
        frame = sub.wait_fresh("rec", time.time(), 5)
    assert frame.header.encoding is encoding
    assert frame.image.shape == (50, 70, 3)
    error = np.abs(frame.image.astype(int) - image[5:55, 10:80].astype(int))
    assert error.max() == 0 if encoding is Encoding.PNG else error.mean() < 8
