"""Record what the daemon publishes, replay the recording: same pixels, same metadata."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import zmq

from pnp_vision.capture.cameras import CameraConfig
from pnp_vision.capture.daemon import CaptureDaemon
from pnp_vision.capture.recording import record
from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.errors import BadRequest, ConfigError, NoFrame, UnknownCamera


def test_record_then_replay_is_pixel_identical(
    tmp_path: Path, endpoint: str, context: zmq.Context, make_images, write_recording, wait_until
) -> None:
    images = make_images(5, width=80, height=60, seed=7)
    write_recording(tmp_path / "source", images)
    live = CameraConfig(
        name="cam", source=str(tmp_path / "source"), loop=True, pacing="fixed", fps=60
    )
    shown = io.StringIO()  # not a terminal: a line per tenth of the frames
    with CaptureDaemon([live], endpoint, context=context):
        count = record(
            endpoint, "cam", tmp_path / "rec", frames=12, first_frame_timeout_s=5, progress=shown
        )
    assert count == 12
    lines = shown.getvalue().splitlines()
    assert lines[0].startswith("record cam: 1/12") and lines[-1].startswith("record cam: 12/12")
    index = [
        json.loads(line) for line in (tmp_path / "rec" / "index.jsonl").read_text().splitlines()
    ]
    assert len(index) == 12
    assert all((tmp_path / "rec" / row["file"]).is_file() for row in index)

    replay = CameraConfig(
        name="again", source=str(tmp_path / "rec"), loop=True, pacing="fixed", fps=100
    )
    with (
        CaptureDaemon([replay], endpoint, context=context),
        FrameSubscriber(endpoint, ring_size=32, context=context) as sub,
    ):
        got = wait_until(
            lambda: (
                len({f.header.source_seq for f in sub.frames("again")}) == 12
                and sub.frames("again")
            ),
            10,
            "all 12 recorded frames replayed",
        )
    by_seq = {row["seq"]: row for row in index}
    for frame in got:
        row = by_seq[frame.header.source_seq]  # replay points back at the recorded frame
        assert frame.header.source_time == row["capture_time"]
        assert (
            (frame.header.width, frame.header.height) == (row["width"], row["height"]) == (80, 60)
        )
        # The recorded frame was itself a replay of `images`: pixels survive both hops.
        assert np.array_equal(frame.image, images[row["source_seq"]])


def test_record_errors_are_named(tmp_path: Path, endpoint: str) -> None:
    with pytest.raises(BadRequest, match="--frames must be >= 1, got 0"):
        record(endpoint, "cam", tmp_path / "a", frames=0)
    with pytest.raises(NoFrame, match=r"'cam' arrived within 0\.3 s: nothing was received"):
        record(endpoint, "cam", tmp_path / "b", frames=1, first_frame_timeout_s=0.3)
    assert not (tmp_path / "b" / "index.jsonl").exists()  # nothing recorded, nothing left
    with pytest.raises(NoFrame):  # so a retry into the same folder is a retry, not a refusal
        record(endpoint, "cam", tmp_path / "b", frames=1, first_frame_timeout_s=0.3)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "index.jsonl").write_text('{"seq": 0}\n')
    with pytest.raises(ConfigError, match="already holds a recording"):
        record(endpoint, "cam", tmp_path / "c", frames=1, first_frame_timeout_s=0.3)
    assert (tmp_path / "c" / "index.jsonl").read_text() == '{"seq": 0}\n'


def test_record_of_a_camera_not_published_names_the_ones_that_are(
    tmp_path: Path, endpoint: str, context: zmq.Context, make_images, write_recording
) -> None:
    """Not after the first-frame timeout and not "is capture running?" (it is): as soon as the
    daemon's statuses show the camera is not among its cameras, one line naming them."""
    write_recording(tmp_path / "source", make_images(3, width=32, height=24))
    live = CameraConfig(name="cam", source=str(tmp_path / "source"), loop=True, fps=30)
    with CaptureDaemon([live], endpoint, context=context), pytest.raises(UnknownCamera) as info:
        # a timeout no test waits out: only the early answer passes
        record(endpoint, "nozzle", tmp_path / "rec", frames=1, first_frame_timeout_s=600)
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"camera 'nozzle' is not published at {endpoint}; the capture daemon there publishes"
        " cam (its cameras/*.toml, or `pnp-vision capture --camera`)"
    )
    assert not (tmp_path / "rec").exists()


def test_record_stops_on_event(tmp_path: Path, endpoint: str) -> None:
    stop = threading.Event()
    stop.set()
    assert record(endpoint, "cam", tmp_path / "c", stop=stop) == 0
