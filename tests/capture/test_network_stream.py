"""A network camera: MJPEG over HTTP (multipart/x-mixed-replace, as IP cameras serve it) from a
server on 127.0.0.1, read by OpenCV's FFmpeg backend. Stopping the server mid-run must show as
`reconnecting` in the published status; restarting it must bring frames back, same daemon."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import zmq

from pnp_vision.capture.cameras import CameraConfig
from pnp_vision.capture.daemon import CaptureDaemon
from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.protocol.frames import CameraState


class MjpegServer:
    """Serves an endless MJPEG stream whose frames are filled with ``level``."""

    def __init__(self, port: int, level: int) -> None:
        self.stopping = threading.Event()
        self.paused = threading.Event()  # connections stay open but no frame is sent
        stopping, paused = self.stopping, self.paused

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=pnpframe")
                self.end_headers()
                image = np.full((48, 64, 3), level, np.uint8)
                jpeg = cv2.imencode(".jpg", image)[1].tobytes()
                part = (
                    b"--pnpframe\r\nContent-Type: image/jpeg\r\n"
                    + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
                # Paced by the wait: about 50 frames per second until the server stops.
                while not stopping.wait(0.02):
                    if paused.is_set():
                        continue
                    try:
                        self.wfile.write(part)
                        self.wfile.flush()
                    except OSError:
                        return

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()  # ends open streams: the client sees the connection close
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ipcam(port: int, *, stall_timeout_s: float) -> CameraConfig:
    """An HTTP MJPEG camera on the test server, with short timeouts and backoff."""
    return CameraConfig(
        name="ipcam",
        source=f"http://127.0.0.1:{port}/video.mjpg",
        open_timeout_s=1.0,
        read_timeout_s=1.0,
        stall_timeout_s=stall_timeout_s,
        backoff={"initial_s": 0.1, "max_s": 0.3},
    )


def test_stream_loss_shows_reconnecting_and_recovers(
    endpoint: str, context: zmq.Context, wait_until
) -> None:
    port = _free_port()
    cam = _ipcam(port, stall_timeout_s=1.0)
    server = MjpegServer(port, level=40)
    try:
        with (
            CaptureDaemon([cam], endpoint, context=context, status_interval_s=0.2) as daemon,
            FrameSubscriber(endpoint, context=context) as sub,
        ):
            before = sub.wait_fresh("ipcam", 0, 10)
            assert abs(int(before.image.mean()) - 40) <= 3
            session = before.header.session

            server.stop()
            down = wait_until(
                lambda: (
                    (s := sub.cameras().get("ipcam")) and s.state is CameraState.RECONNECTING and s
                ),
                10,
                "status `reconnecting` on the wire",
            )
            assert down.last_error

            server = MjpegServer(port, level=200)
            after = wait_until(
                lambda: (f := sub.latest("ipcam")) and f.image.mean() > 150 and f,
                15,
                "frames from the restarted server",
            )
            assert after.header.session == session  # the daemon was not restarted
            assert after.header.seq > before.header.seq
            status = daemon.wait_for("ipcam", lambda s: s.state is CameraState.STREAMING, 5)
            assert status.reconnects >= 1
    finally:
        server.stop()


def test_stalled_stream_is_reopened(endpoint: str, context: zmq.Context, wait_until) -> None:
    """The server keeps the connection open but stops sending: the watchdog notices the stall."""
    port = _free_port()
    cam = _ipcam(port, stall_timeout_s=0.5)
    server = MjpegServer(port, level=90)
    try:
        with (
            CaptureDaemon([cam], endpoint, context=context, status_interval_s=0.2) as daemon,
            FrameSubscriber(endpoint, context=context) as sub,
        ):
            before = sub.wait_fresh("ipcam", 0, 10)
            server.paused.set()
            stalled = daemon.wait_for("ipcam", lambda s: s.state is CameraState.RECONNECTING, 10)
            assert "no frame" in (stalled.last_error or "") or "stopped" in (
                stalled.last_error or ""
            )
            server.paused.clear()
            after = sub.wait_fresh("ipcam", time.time(), 15)
            assert after.header.seq > before.header.seq
            assert daemon.statuses()["ipcam"].reconnects >= 1
    finally:
        server.stop()
