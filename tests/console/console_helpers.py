"""Helpers of the console tests: polling with a deadline, HTTP, a console process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from waits import wait_until as until

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.stack.launch import ServiceStack

BUNDLED_MODEL = PROJECT_ROOT / "models" / "pnp-inspector"
DEMO = PROJECT_ROOT / "recordings" / "demo"


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def console_process(
    stack: ServiceStack, recordings: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`pnp-vision console` on a free loopback port; yields (base URL, process)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "pnp_vision.cli",
        "console",
        "--port",
        str(port),
        "--endpoint",
        stack.requests_endpoint,
        "--frames-endpoint",
        stack.frames_endpoint,
        "--recordings",
        str(recordings),
        *extra,
    ]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}/"
    try:
        until(lambda: proc.poll() is not None or _port_open(port), 60, "console listening", 0.1)
        assert proc.poll() is None, f"console exited with {proc.returncode}"
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
