"""Start-up errors from the command line, as a person or a supervisor meets them: one line
`error [code]: ...` with a start-up code (never a request code) and that code's exit status."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pnp_vision.errors import EXIT_CODES, StartupCode


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}  # no PNP_VISION_* of the caller
    return subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def _error_line(done: subprocess.CompletedProcess[str], code: StartupCode) -> str:
    assert done.returncode == EXIT_CODES[code], done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("pnp-vision ")]
    assert f": error [{code.value}]: " in line, line
    return line


@pytest.fixture
def taken_port() -> int:
    """A TCP port another process holds (listening), as when a second worker is started."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_in_use_is_address_in_use_for_capture_and_worker(
    taken_port: int, tmp_path: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{taken_port}"
    capture = _cli("capture", "--endpoint", endpoint, cwd=tmp_path)
    line = _error_line(capture, StartupCode.ADDRESS_IN_USE)
    assert f"cannot bind frames_endpoint {endpoint}: address already in use" in line
    assert "folders read home=- found_by=none" in capture.stderr  # said at start, one line
    worker = _cli(
        "worker", "--endpoint", endpoint, "--frames-endpoint", f"ipc://{tmp_path}/f", cwd=tmp_path
    )
    line = _error_line(worker, StartupCode.ADDRESS_IN_USE)
    assert f"cannot bind requests_endpoint {endpoint}" in line and "PNP_VISION_" in line


def test_a_missing_model_folder_home_or_setting_has_its_own_code(tmp_path: Path) -> None:
    worker = _cli("worker", "--model", str(tmp_path / "nothing"), cwd=tmp_path, timeout=60)
    line = _error_line(worker, StartupCode.MODEL_NOT_FOUND)
    assert str(tmp_path / "nothing") in line
    for args in (("--home", "no-rig", "templates"), ("templates", "--home", "no-rig")):
        line = _error_line(_cli(*args, cwd=tmp_path), StartupCode.FOLDER_NOT_FOUND)
        assert f"rig folder {tmp_path / 'no-rig'} (" in line and "pnp-vision init" in line
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "service.toml").write_text("requests_endpont = 'tcp://*:1'\n")
    line = _error_line(_cli("status", cwd=tmp_path), StartupCode.CONFIG_ERROR)
    assert "service.toml:1: requests_endpont is not a setting; did you mean requests_endpoint?" in (
        line
    )


def test_the_readme_documents_every_exit_code_and_a_rig_from_the_wheel() -> None:
    from pnp_vision.config import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| `([a-z_]+)` \|", readme, re.MULTILINE))
    assert {code: int(status) for status, code in rows.items()} == {
        code.value: status for code, status in EXIT_CODES.items()
    }
    rig = readme[readme.index("## Running it on a rig") :]
    block = rig[rig.index("```\n") : rig.index("\n```", rig.index("```\n") + 4)]
    assert "pip install pnp_vision-" in block and "pnp-vision init " in block
    assert "pip install -e" not in block
    assert "| `pnp-vision init DIR` |" in readme
