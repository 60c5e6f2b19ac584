"""`pnp-vision capture` and `pnp-vision record` as real processes; signals stop them cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.protocol.frames import CameraState

CLI = [sys.executable, "-m", "pnp_vision.cli"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_capture_process_streams_and_stops_on_signal(
    tmp_path: Path,
    endpoint: str,
    context: zmq.Context,
    make_images,
    write_recording,
    wait_until,
    sig: signal.Signals,
) -> None:
    write_recording(tmp_path / "rec", make_images(3))
    (tmp_path / "cams.toml").write_text(
        '[[camera]]\nname = "p"\nsource = "rec"\nloop = true\npacing = "fixed"\nfps = 30\n'
        '[[camera]]\nname = "unused"\nsource = "rec"\n'
    )
    proc = subprocess.Popen(
        [*CLI, "capture", "--cameras-dir", str(tmp_path / "cams.toml"), "--camera", "p",
         "--endpoint", endpoint],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        with FrameSubscriber(endpoint, context=context) as sub:
            frame = sub.wait_fresh("p", 0, 20)
            assert frame.header.camera == "p"
            if sig is signal.SIGTERM:
                out = tmp_path / "recorded"
                rec = subprocess.run(
                    [*CLI, "record", "--camera", "p", "--out", str(out), "--frames", "4",
                     "--endpoint", endpoint],
                    capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                assert rec.returncode == 0, rec.stderr
                assert len((out / "index.jsonl").read_text().splitlines()) == 4
            assert set(sub.cameras()) == {"p"}  # --camera picked one of the two
            proc.send_signal(sig)
            # The last status of the session says the daemon stopped on purpose.
            wait_until(
                lambda: (s := sub.cameras()["p"]) and s.state is CameraState.STOPPED,
                10,
                "the `stopped` status",
            )
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "capture stopped" in proc.stderr.read()


def test_capture_process_reports_bad_cameras(tmp_path: Path) -> None:
    (tmp_path / "cams.toml").write_text('[[camera]]\nname = "x"\nsource = 0\nrotate = 45\n')
    result = subprocess.run(
        [*CLI, "capture", "--cameras-dir", str(tmp_path / "cams.toml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3  # config_error: a start-up error's own exit status
    assert "[config_error]" in result.stderr
    assert "rotate" in result.stderr and "45" in result.stderr


def test_record_index_lines_are_frame_headers(
    tmp_path: Path, endpoint: str, make_images, write_recording
) -> None:
    """Index lines are the frame headers plus the file name; the encoding is the file's."""
    headers = write_recording(tmp_path / "rec", make_images(2))
    rows = [json.loads(x) for x in (tmp_path / "rec" / "index.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "file"} for r in rows] == [
        {**h.model_dump(mode="json", exclude_none=True), "encoding": "png"} for h in headers
    ]


def test_busy_endpoint_is_a_clear_error(endpoint: str, make_images, write_recording, tmp_path):
    from pnp_vision.capture.cameras import CameraConfig
    from pnp_vision.capture.daemon import CaptureDaemon
    from pnp_vision.errors import ConfigError

    write_recording(tmp_path / "rec", make_images(1))
    cam = CameraConfig(name="c", source=str(tmp_path / "rec"))
    with CaptureDaemon([cam], "tcp://127.0.0.1:*") as first:
        second = CaptureDaemon([cam], first.endpoint)
        with pytest.raises(ConfigError, match=re.escape(first.endpoint)):
            second.start()
        second.stop()  # after a failed start: returns, raises nothing
