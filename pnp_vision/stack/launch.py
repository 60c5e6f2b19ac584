"""Start the capture daemon and the worker as real subprocesses, wait until they serve, stop them.

Used by `pnp-vision demo`, the end-to-end tests and the benchmarks, so all of them run the same
commands a person would (`python -m pnp_vision.cli capture|worker ...`). Every wait has a
deadline; a child that dies or never gets ready raises with the tail of its log. On Linux,
children started from the main thread are asked to die with their parent (PR_SET_PDEATHSIG), so
a killed test run leaves no stray workers behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pnp_vision.config import Settings
from pnp_vision.defaults import shipped
from pnp_vision.errors import PnpVisionError
from pnp_vision.protocol.requests import StatusResult

DEMO_CAMERAS = shipped("cameras", "demo.toml")


class LaunchError(PnpVisionError):
    """A child process that exited early or did not become ready in time."""


def ipc_endpoint(directory: Path, name: str) -> str:
    """An ipc:// endpoint in `directory`; no port races, but the path must stay short (<100)."""
    path = Path(directory) / f"{name}.sock"
    if len(str(path)) > 100:
        raise LaunchError(f"ipc path {path} is too long for a Unix socket (max ~100 characters)")
    return f"ipc://{path}"


def free_tcp_endpoint() -> str:
    """tcp://127.0.0.1:PORT with a port free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def _death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies, or None.

    Resolved in the parent: between fork and exec the child must not import anything (another
    thread may have held the import lock at fork time). The signal is tied to the *thread* that
    forks, so it is only used when spawning from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    import ctypes

    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@dataclass
class ServiceProcess:
    """One child process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    endpoint: str
    args: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def send_signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after `timeout` s."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
        self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after `timeout` s; returns the exit code."""
        self.send_signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code is None:
            self.kill()
            code = self.popen.returncode
        return code


def _spawn(
    name: str, args: Sequence[str], endpoint: str, log_dir: Path, env: Mapping[str, str] | None
) -> ServiceProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{int(time.time() * 1000)}.log"
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    command = [sys.executable, "-m", "pnp_vision.cli", *args]
    with open(log_path, "wb") as log_file:
        popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env,  # and our directory: the children find the rig folder we found
            start_new_session=True,  # our signals only: a Ctrl-C reaches the parent, which stops us
            preexec_fn=_death_signal(),
        )
    return ServiceProcess(name, popen, log_path, endpoint, list(command))


def start_capture(
    frames_endpoint: str,
    *,
    log_dir: Path,
    cameras: Sequence[str] = ("demo",),
    cameras_dir: Path = DEMO_CAMERAS,
    env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    args = ["capture", "--endpoint", frames_endpoint, "--cameras-dir", str(cameras_dir)]
    for camera in cameras:
        args += ["--camera", camera]
    return _spawn("capture", args, frames_endpoint, log_dir, env)


def start_worker(
    requests_endpoint: str,
    frames_endpoint: str,
    *,
    model_dir: Path | None,
    log_dir: Path,
    queue_size: int | None = None,
    env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """`env` may carry any PNP_VISION_* setting (e.g. PNP_VISION_DEFAULT_DEADLINE_S);
    `model_dir` None leaves the folder to the settings (which a reload reads again)."""
    args = ["worker", "--endpoint", requests_endpoint, "--frames-endpoint", frames_endpoint]
    if model_dir is not None:
        args += ["--model", str(model_dir)]
    if queue_size is not None:
        args += ["--queue-size", str(queue_size)]
    return _spawn("worker", args, requests_endpoint, log_dir, env)


def wait_until_ready(
    worker: ServiceProcess,
    timeout: float,
    *,
    cameras: Sequence[str] = (),
    max_frame_age_s: float = 2.0,
    watch: Sequence[ServiceProcess] = (),
    progress: Callable[[str], None] | None = None,
) -> StatusResult:
    """Poll the worker's status until its model is ready and `cameras` have recent frames;
    `progress` hears each step as it is reached (a cold model load takes a while).

    Raises LaunchError naming what was missing, with the log tails, if a watched process exits
    or the deadline passes.
    """
    from pnp_vision.client import ServiceTimeout, VisionClient

    end = time.monotonic() + timeout
    last: StatusResult | None = None
    said: set[str] = set()

    def step(text: str) -> None:
        if progress is not None and text not in said:
            said.add(text)
            progress(text)

    with VisionClient(worker.endpoint, timeout=0.5, retries=0) as client:
        while time.monotonic() < end:
            for proc in (worker, *watch):
                if not proc.alive():
                    raise LaunchError(
                        f"{proc.name} exited with {proc.popen.returncode} before the worker was "
                        f"ready; log {proc.log_path}:\n{proc.log_tail()}"
                    )
            try:
                last = client.status()
            except ServiceTimeout:
                continue
            if last.model.state == "failed":
                raise LaunchError(f"worker model failed: {last.model.error}")
            step("worker up, loading the model")
            if last.ready:
                step("model loaded, waiting for camera frames")
            views = last.cameras
            if last.ready and all(
                c in views
                and views[c].frame_age_ms is not None
                and views[c].frame_age_ms <= max_frame_age_s * 1000
                for c in cameras
            ):
                return last
            time.sleep(0.1)  # polling interval of a deadline-bounded wait, not a timing guess
    missing = "no status reply" if last is None else _not_ready(last, cameras)
    logs = "\n".join(f"--- {p.name} ({p.log_path}):\n{p.log_tail()}" for p in (worker, *watch))
    raise LaunchError(f"worker not ready within {timeout:g} s: {missing}\n{logs}")


def _not_ready(status: StatusResult, cameras: Sequence[str]) -> str:
    parts = [f"model {status.model.state}"]
    for camera in cameras:
        view = status.cameras.get(camera)
        parts.append(
            f"camera {camera}: "
            + ("not seen" if view is None else f"state {view.state}, age {view.frame_age_ms} ms")
        )
    return "; ".join(parts)


def model_for_demo(settings: Settings) -> Path:
    """The model at settings.model_dir (the bundled trained inspector by default); a missing
    one is `model_not_found`, naming where it was looked for."""
    return settings.require_model()


@dataclass
class ServiceStack:
    """A capture daemon and a worker wired together on fresh ipc:// endpoints."""

    capture: ServiceProcess
    worker: ServiceProcess
    status: StatusResult
    run_dir: Path

    @property
    def requests_endpoint(self) -> str:
        return self.worker.endpoint

    @property
    def frames_endpoint(self) -> str:
        return self.capture.endpoint

    def stop(self) -> dict[str, int]:
        """Worker first (it drains), then capture; returns exit codes."""
        return {"worker": self.worker.stop(), "capture": self.capture.stop()}


@contextlib.contextmanager
def service_stack(
    *,
    model_dir: Path | None,
    cameras: Sequence[str] = ("demo",),
    cameras_dir: Path = DEMO_CAMERAS,
    queue_size: int | None = None,
    worker_env: Mapping[str, str] | None = None,
    ready_timeout: float = 90.0,
    run_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Iterator[ServiceStack]:
    """Start capture + worker, wait until frames flow through a ready worker, stop on exit."""
    with contextlib.ExitStack() as stack:
        if run_dir is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pnpv-")))
        frames = ipc_endpoint(run_dir, "frames")
        requests = ipc_endpoint(run_dir, "requests")
        capture = start_capture(frames, log_dir=run_dir, cameras=cameras, cameras_dir=cameras_dir)
        stack.callback(capture.stop)
        worker = start_worker(
            requests,
            frames,
            model_dir=model_dir,
            log_dir=run_dir,
            queue_size=queue_size,
            env=worker_env,
        )
        stack.callback(worker.stop)
        status = wait_until_ready(
            worker, ready_timeout, cameras=cameras, watch=[capture], progress=progress
        )
        yield ServiceStack(capture, worker, status, run_dir)
